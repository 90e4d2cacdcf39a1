"""The dbt project from plain Python: build, parse (the manifest Dagster loads), docs.

dbt runs in-process through ``dbtRunner`` (no subprocess, no network: the project uses no dbt
packages). The profile reads the work file from ``CSWH_WORK_DB`` and the PII salt from
``CSWH_PII_SALT``; both come from ``Settings.export_env()``, applied to ``os.environ`` before dbt
runs because dbt's ``env_var()`` reads the process environment.

Each build writes its target folder (compiled SQL, run results) next to the work file, so that two
warehouses (a test session and ``make run``) never overwrite each other's artefacts; only
``prepare_manifest`` writes ``dbt/target/manifest.json``, the file the Dagster definitions load.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterable

import duckdb

from dagster_project.settings import DBT_PROJECT_DIR, ConfigurationError, Settings, eprint

DBT_TARGET_DIR = DBT_PROJECT_DIR / "target"
MANIFEST_PATH = DBT_TARGET_DIR / "manifest.json"
DBT_PACKAGE = "cs_warehouse"

# Files whose change makes a stored manifest stale.
_PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml")
_PROJECT_INPUT_DIRS = ("models", "macros", "seeds", "tests")


# The pipeline's build: seeds, models and data tests. dbt unit tests check the KPI formulas on
# fixed inputs, not the data, so they run in the test suite (tests/transform), not in every
# production build, where they cost a node each (20 of them, about 10 s at scale 1).
BUILD_COMMAND = ["build", "--exclude-resource-type", "unit_test"]


def replaced_partitions(work_db: Path) -> list[tuple[str, str]]:
    """(source, partition) of every partition a re-sent file replaced since the last full build.

    The incremental models see the keys a run adds or changes, not the keys a re-sent day no
    longer holds, so after a replacement the next build is a full refresh (``build_command``)."""
    from dagster_project.settings import connect_work_db
    from dagster_project.lib.ingest.loader import REPLACEMENTS_TABLE

    if not Path(work_db).exists():
        return []
    con = connect_work_db(work_db)
    try:
        return [tuple(r) for r in con.execute(
            f"SELECT DISTINCT source, partition FROM {REPLACEMENTS_TABLE} ORDER BY 1, 2").fetchall()]
    except duckdb.CatalogException:  # no ingest yet: nothing was replaced
        return []
    finally:
        con.close()


def clear_replaced_partitions(work_db: Path, replaced: list[tuple[str, str]]) -> None:
    """After a successful full refresh: the replacements it covered are consumed."""
    from dagster_project.settings import connect_work_db
    from dagster_project.lib.ingest.loader import REPLACEMENTS_TABLE

    if not replaced:
        return
    con = connect_work_db(work_db)
    try:
        con.execute(f"DELETE FROM {REPLACEMENTS_TABLE} WHERE (source, partition) IN "
                    "(SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]))",
                    [[s for s, _ in replaced], [p for _, p in replaced]])
    finally:
        con.close()


def build_command(full_refresh: bool) -> list[str]:
    return [*BUILD_COMMAND, "--full-refresh"] if full_refresh else list(BUILD_COMMAND)


def incremental_model_fingerprints(manifest: dict) -> dict[str, str]:
    """name -> fingerprint of every incremental model: its SQL, its config, its columns and the
    project's macros (pure). A change to any of them can change what the table holds. All the
    project's macros rather than the model's own: dbt lists a model's macros as the build that
    wrote the manifest rendered them, so an incremental build lists more than a full one."""
    import hashlib

    macros = "\x00".join(m.get("macro_sql", "") for uid, m in sorted((manifest.get("macros") or {}).items())
                         if m.get("package_name") == DBT_PACKAGE)
    out = {}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        if config.get("materialized") != "incremental":
            out[node["name"]] = "not incremental"
            continue
        parts = [node.get("raw_code") or "", json.dumps(config, sort_keys=True, default=str),
                 json.dumps(sorted(node.get("columns") or {})), macros]
        out[node["name"]] = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return out


def changed_incremental_models(settings: Settings) -> list[str]:
    """Incremental models whose definition changed since the last build on this warehouse (its
    manifest is in the build's target folder): their tables were built by the old definition,
    so the build is a full refresh. A new model needs none: it has no table yet."""
    previous = dbt_target_dir(settings) / "manifest.json"
    if not previous.exists() or not settings.work_db.exists():
        return []
    try:
        before = incremental_model_fingerprints(json.loads(previous.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        # Truncated (a full disk during the last build) or damaged: what the tables were built
        # from is unknown, so every incremental model is rebuilt; the stale artefacts go.
        discard_damaged_artefacts(settings)
        return [UNREADABLE_MANIFEST]
    now = incremental_model_fingerprints(json.loads(prepare_manifest().read_text(encoding="utf-8")))
    return sorted(name for name, fp in now.items()
                  if fp != "not incremental" and name in before and before[name] != fp)


UNREADABLE_MANIFEST = "(all: the previous build's manifest is unreadable)"


def discard_damaged_artefacts(settings: Settings) -> None:
    """Remove the build artefacts of this warehouse that a full disk may have cut short (the
    manifest and dbt's partial-parse cache); dbt writes them anew."""
    for name in ("manifest.json", "partial_parse.msgpack", "run_results.json"):
        (dbt_target_dir(settings) / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- PII salt changes
# The customer keys in the incremental models are salted hashes. A build with another salt would
# add new-salt keys next to the old ones (one customer split in two), so the work file records a
# fingerprint of the salt its marts were built with (never the salt itself) and a changed salt is
# refused unless the operator says the change is intended; then the build is a full refresh.
SALT_TABLE = "raw._pii_salt_fingerprint"
SALT_CHANGE_VARIABLE = "CSWH_PII_SALT_CHANGED"


class SaltChanged(ConfigurationError):
    """The PII salt differs from the one the warehouse's marts were built with."""


def salt_fingerprint(salt: str) -> str:
    """A short one-way fingerprint of the salt (it identifies the salt, it does not reveal it)."""
    import hashlib

    return hashlib.sha256(b"cs-warehouse customer-key salt\x00" + salt.encode("utf-8")).hexdigest()[:16]


def recorded_salt_fingerprint(work_db: Path) -> str | None:
    from dagster_project.settings import connect_work_db

    if not Path(work_db).exists():
        return None
    con = connect_work_db(work_db)
    try:
        row = con.execute(f"SELECT fingerprint FROM {SALT_TABLE} ORDER BY recorded_at DESC LIMIT 1").fetchone()
        return row[0] if row else None
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def salt_change_reason(settings: Settings, env=None) -> str | None:
    """None if the salt is the one the marts were built with (or nothing was recorded yet); the
    full-refresh reason if it changed and ``CSWH_PII_SALT_CHANGED=1`` says that is intended;
    else SaltChanged with what to do."""
    env = os.environ if env is None else env
    recorded = recorded_salt_fingerprint(settings.work_db)
    current = salt_fingerprint(settings.pii_salt)
    if recorded is None or recorded == current:
        return None
    if str(env.get(SALT_CHANGE_VARIABLE, "")).strip().lower() in ("1", "true", "yes"):
        return (f"the PII salt changed (fingerprint {recorded} -> {current}; {SALT_CHANGE_VARIABLE}=1): every "
                "customer key is recomputed")
    raise SaltChanged(
        f"the PII salt differs from the one this warehouse's marts were built with (fingerprint {recorded}, now "
        f"{current}). A build would mix customer keys of both salts. If the change is intended, run again with "
        f"{SALT_CHANGE_VARIABLE}=1 (a full refresh recomputes every key); otherwise restore CSWH_PII_SALT.")


def record_salt_fingerprint(settings: Settings) -> None:
    """After a complete build: the marts are built with this salt."""
    from dagster_project.settings import connect_work_db

    if not settings.work_db.exists():
        return
    con = connect_work_db(settings.work_db)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(f"CREATE TABLE IF NOT EXISTS {SALT_TABLE} (fingerprint VARCHAR, recorded_at TIMESTAMP)")
        current = salt_fingerprint(settings.pii_salt)
        row = con.execute(f"SELECT fingerprint FROM {SALT_TABLE} ORDER BY recorded_at DESC LIMIT 1").fetchone()
        if row is None or row[0] != current:
            con.execute(f"INSERT INTO {SALT_TABLE} VALUES (?, now()::TIMESTAMP)", [current])
    finally:
        con.close()


def full_refresh_reasons(settings: Settings, replaced: list[tuple[str, str]]) -> list[str]:
    """Why the next build must rebuild the incremental models whole (empty: it need not).
    Raises SaltChanged if the PII salt changed without ``CSWH_PII_SALT_CHANGED=1``."""
    reasons = []
    salt = salt_change_reason(settings)
    if salt:
        reasons.append(salt)
    if replaced:
        reasons.append(f"ingest replaced {len(replaced)} partition(s) since the last full build "
                       f"(first: {replaced[0][0]} {replaced[0][1]})")
    changed = changed_incremental_models(settings)
    if changed == [UNREADABLE_MANIFEST]:
        reasons.append("the previous build's manifest is unreadable (cut short by a full disk?): rebuilt whole")
    elif changed:
        reasons.append(f"incremental model(s) changed since the last build: {', '.join(changed)}")
    return reasons


class DbtBuildError(RuntimeError):
    """A dbt command failed; ``failed_nodes`` names the models/tests/seeds that failed."""

    def __init__(self, message: str, failed_nodes: list[str]):
        super().__init__(message)
        self.failed_nodes = failed_nodes


def _env_for(settings: Settings | None) -> None:
    """Make dbt's env_var() calls resolve: the given settings win; without settings, keep what the
    environment already has and fill the rest from Settings.from_env()."""
    if settings is not None:
        settings.apply_to_environ()
        return
    missing = [k for k in ("CSWH_WORK_DB", "CSWH_PII_SALT") if not os.environ.get(k)]
    if missing:
        for key, value in Settings.from_env().export_env().items():
            os.environ.setdefault(key, value)


def dbt_target_dir(settings: Settings) -> Path:
    """Where a build against this warehouse writes dbt's artefacts."""
    return settings.warehouse_dir / "dbt_target"


def _common_args(target_dir: Path) -> list[str]:
    return [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target_dir),
    ]


def _invoke(args: list[str], log_dir: Path) -> "object":
    from dbt.cli.main import dbtRunner

    log_dir.mkdir(parents=True, exist_ok=True)
    # --log-path keeps dbt.log out of the repository.
    full = [*args, "--log-path", str(log_dir), "--no-use-colors"]
    try:
        return dbtRunner().invoke(full)
    finally:
        release_duckdb()


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches one read-write connection per process; while it lives, this process cannot
    open the same file read-only ("different configuration") and no other process can open it at
    all. Closing it after every invocation leaves the file free, as a dbt subprocess would.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a hard dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()


def failed_nodes(result) -> list[str]:
    """Names of the nodes whose status is error/fail/runtime error in a dbtRunnerResult."""
    names: list[str] = []
    results = getattr(result.result, "results", None) or []
    for node_result in results:
        status = str(getattr(node_result, "status", "")).lower()
        if status.endswith(("error", "fail")):
            node = getattr(node_result, "node", None)
            names.append(getattr(node, "unique_id", None) or getattr(node, "name", "?"))
    return names


def _disk_full(result) -> bool:
    texts = [str(getattr(result, "exception", "") or "")]
    texts += [str(getattr(r, "message", "") or "") for r in (getattr(result.result, "results", None) or [])]
    return any("no space left" in t.lower() or "disk full" in t.lower() for t in texts)


def summarise_results(result) -> dict[str, int]:
    """Counts of node results by status (e.g. {'success': 30, 'pass': 300})."""
    counts: dict[str, int] = {}
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", "unknown")).split(".")[-1].lower()
        counts[status] = counts.get(status, 0) + 1
    return counts


def run_dbt(settings: Settings, command: Iterable[str], *, quiet: bool = True) -> dict:
    """Run one dbt command (e.g. ["test", "--select", "test_type:unit"]) against the settings'
    work file; raise DbtBuildError naming the failed nodes on failure."""
    _env_for(settings)
    target = dbt_target_dir(settings)
    args = [*command, *_common_args(target)]
    if quiet:
        args.append("--quiet")
    started = time.perf_counter()
    result = _invoke(args, settings.warehouse_dir / "dbt_logs")
    elapsed = time.perf_counter() - started
    failed = failed_nodes(result)
    if not result.success or failed:
        detail = f": {result.exception}" if result.exception else ""
        if _disk_full(result):
            detail = ": no space left on the device (the failing nodes below failed for that reason)" + detail
        raise DbtBuildError(
            f"dbt {' '.join(command)} failed on {settings.work_db}{detail}; failed nodes: "
            f"{', '.join(failed) or 'none reported'} (logs in {settings.warehouse_dir / 'dbt_logs'})",
            failed,
        )
    return {
        "command": list(command),
        "success": True,
        "elapsed_seconds": elapsed,
        "statuses": summarise_results(result),
        "target_dir": str(target),
    }


def run_dbt_build(settings: Settings, select: str | None = None, full_refresh: bool = False) -> dict:
    """``dbt build`` (seeds, models and data tests; see BUILD_COMMAND) on the settings' work file:
    incremental, or a full refresh if asked or if ingest replaced partitions since the last one.

    Returns {"success", "elapsed_seconds", "statuses": {status: count}, ...}; raises
    DbtBuildError with the failing node names when any node errors or any error-severity test fails.
    """
    replaced = replaced_partitions(settings.work_db)
    command = build_command(full_refresh or bool(full_refresh_reasons(settings, replaced)))
    if select:
        command += ["--select", select]
    result = run_dbt(settings, command)
    if not select:  # a partial build does not refresh every incremental model
        clear_replaced_partitions(settings.work_db, replaced)
        record_salt_fingerprint(settings)
    return result


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in _PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        if path.exists():
            newest = max(newest, path.stat().st_mtime)
    for folder in _PROJECT_INPUT_DIRS:
        for path in (DBT_PROJECT_DIR / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def _looks_complete(manifest: Path) -> bool:
    """A JSON document cut short (a full disk) does not end with its closing brace."""
    try:
        with open(manifest, "rb") as fh:
            fh.seek(max(manifest.stat().st_size - 64, 0))
            return fh.read().rstrip().endswith(b"}")
    except OSError:
        return False


def manifest_is_stale(manifest: Path = MANIFEST_PATH) -> bool:
    return (not manifest.exists() or manifest.stat().st_mtime < _newest_input_mtime()
            or not _looks_complete(manifest))


def prepare_manifest(force: bool = False) -> Path:
    """Return dbt/target/manifest.json, running ``dbt parse`` (offline, no database needed) first
    if it is missing or older than any model, macro, seed, test or project file."""
    if force or manifest_is_stale():
        _env_for(None)
        result = _invoke(["parse", "--quiet", *_common_args(DBT_TARGET_DIR)], DBT_PROJECT_DIR / "logs")
        if not result.success:
            raise DbtBuildError(f"dbt parse of {DBT_PROJECT_DIR} failed: {result.exception}", [])
    return MANIFEST_PATH


def generate_docs(settings: Settings) -> Path:
    """``dbt docs generate`` against the work file; copy the site to reports_dir/dbt-docs.

    dbt's index.html fetches manifest.json and catalog.json at runtime, which browsers refuse for
    file:// pages, so the copied index.html is dbt's ``--static`` page (both JSON documents inlined;
    its JavaScript and CSS are bundled, no CDN). The JSON files are copied alongside for tools.
    """
    run_dbt(settings, ["docs", "generate", "--static"])
    target = dbt_target_dir(settings)
    out = settings.reports_dir / "dbt-docs"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target / "static_index.html", out / "index.html")
    for name in ("catalog.json", "manifest.json"):
        shutil.copyfile(target / name, out / name)
    eprint(f"[docs] dbt docs in {out}")
    return out / "index.html"


def load_run_results(settings: Settings) -> dict:
    """The last build's run_results.json (timings per node), for benchmarks and reports."""
    return json.loads((dbt_target_dir(settings) / "run_results.json").read_text(encoding="utf-8"))
