"""Published versions: what is live (``publish-status``) and going back (``rollback [--to VERSION]``)."""

from __future__ import annotations

import json

import duckdb

from dagster_project.settings import Settings, eprint
from dagster_project.lib.publish.publish import VERSION_PREFIX, install_version, list_versions, sha256_of


def read_manifest(path) -> dict | None:
    """The manifest row of a published/version file, through a short-lived read-only connection."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("select * from meta.publish_manifest order by published_at desc limit 1").fetchone()
        if row is None:
            return None
        manifest = dict(zip([d[0] for d in con.description], row))
    finally:
        con.close()
    for key in ("row_counts", "check_summary", "source_files"):
        if isinstance(manifest.get(key), str):
            manifest[key] = json.loads(manifest[key])
    manifest["published_at"] = str(manifest.get("published_at"))
    return manifest


def current_manifest(settings: Settings) -> dict | None:
    if not settings.published_db.exists():
        return None
    return read_manifest(settings.published_db)


def print_publish_status(settings: Settings) -> int:
    manifest = current_manifest(settings)
    if manifest is None:
        print(f"nothing published yet ({settings.published_db} does not exist)")
        return 1
    counts = manifest.get("row_counts") or {}
    checks = (manifest.get("check_summary") or {}).get("checks", [])
    print(f"published file: {settings.published_db}")
    print(f"sha256:         {sha256_of(settings.published_db)}")
    print(f"version:        {manifest['version_id']}")
    print(f"run id:         {manifest['run_id']}")
    print(f"published at:   {manifest['published_at']} (UTC)")
    print(f"storage:        {manifest.get('storage_version')}  (readable by DuckDB 1.x and 2.x)")
    print(f"checks:         {sum(1 for c in checks if c.get('passed'))} passed, "
          f"{sum(1 for c in checks if not c.get('passed'))} failed")
    print(f"source files:   {len(manifest.get('source_files') or [])}")
    print("tables:")
    width = max((len(t) for t in counts), default=10)
    for table, rows in counts.items():
        print(f"  marts.{table.ljust(width)}  {int(rows):>10,} rows")
    versions = list_versions(settings)
    print(f"versions kept in {settings.versions_dir}: {len(versions)}")
    for path in versions:
        marker = " (current)" if manifest["version_id"] in path.name else ""
        print(f"  {path.name}{marker}")
    return 0


def previous_version(settings: Settings):
    """The newest version file older than the current one (None if there is none)."""
    manifest = current_manifest(settings)
    versions = list_versions(settings)
    if manifest is None:
        return None
    current_names = [p for p in versions if manifest["version_id"] in p.name]
    if not current_names:
        # The live file is not among the kept versions: go back to the newest kept one.
        return versions[-1] if versions else None
    index = versions.index(current_names[0])
    return versions[index - 1] if index > 0 else None


def version_file(settings: Settings, version_id: str):
    """The kept version file of ``version_id`` (a unique leading part of it is enough, as with git
    commit ids); ValueError saying why when none or several match."""
    wanted = version_id.strip()
    versions = list_versions(settings)
    exact = [p for p in versions if p.stem == f"{VERSION_PREFIX}{wanted}"]
    matches = (exact or [p for p in versions if p.stem.startswith(f"{VERSION_PREFIX}{wanted}")]) if wanted else []
    if len(matches) == 1:
        return matches[0]
    kept = ", ".join(p.stem[len(VERSION_PREFIX):] for p in versions) or "none"
    if not matches:
        raise ValueError(f"no kept version {wanted!r} in {settings.versions_dir} (kept: {kept})")
    raise ValueError(f"{wanted!r} matches {len(matches)} kept versions; give more of it (kept: {kept})")


def rollback(settings: Settings, to: str | None = None, confirm=None) -> int:
    """Atomically restore a kept version over the published file: ``to`` (a version id), else the
    one before the current. ``confirm(question) -> bool`` is asked first when given (the CLI asks
    the operator; ``--yes`` answers for them); a "no" changes nothing (exit 1)."""
    manifest = current_manifest(settings)
    if manifest is None:
        eprint(f"error: nothing published ({settings.published_db} does not exist); nothing to roll back")
        return 1
    if to is not None:
        try:
            target = version_file(settings, to)
        except ValueError as exc:
            eprint(f"error: {exc}")
            return 2
        if target.stem == f"{VERSION_PREFIX}{manifest['version_id']}":
            eprint(f"error: {manifest['version_id']} is already the published version; nothing to do")
            return 1
    else:
        target = previous_version(settings)
        if target is None:
            eprint(f"error: no version older than {manifest['version_id']} in {settings.versions_dir}")
            return 1
    chosen = read_manifest(target) or {}
    question = (f"Replace the published version {manifest['version_id']} (published {manifest['published_at']}) "
                f"with {chosen.get('version_id', target.stem)} (published {chosen.get('published_at', '?')})? "
                "BI tools see it at their next connection. [y/N] ")
    if confirm is not None and not confirm(question):
        print(f"rollback cancelled: {manifest['version_id']} stays published")
        return 1
    install_version(settings, target)
    restored = current_manifest(settings)
    print(f"rolled back: {manifest['version_id']} -> {restored['version_id']} "
          f"(run {restored['run_id']}, published {restored['published_at']})")
    return 0
