"""The dbt project from plain Python: parse (the manifest Dagster loads), the full-refresh decision,
and the dbt commands that are not the pipeline's build (docs, the unit tests).

dbt always runs as a subprocess, through the launcher ``cs-warehouse-dbt`` (``dbt_child.py``: it
dies with its parent), with the environment ``Settings.dbt_env`` decides: the pipeline's build is
started by dagster-dbt for the dbt asset (``defs/transform``), everything else by ``run_dbt``. No
dbt runs inside a Dagster or test process, so a build in a test is the build in production.

Each warehouse keeps its dbt artefacts (compiled SQL, run results, the manifest of its last build)
in its own target folder next to the work file (``dbt_target_dir``); only ``prepare_manifest``
writes ``dbt/target/manifest.json``, the parsed project the Dagster definitions and the catalog
(``catalog.py``) read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pprint
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

import duckdb
import jinja2
import yaml

from dagster_project.lib.ingest.loader import REPLACEMENTS_TABLE
from dagster_project.lib.transform.catalog import MANIFEST_PATH, load_manifest, model_nodes, project_macros_sql
from dagster_project.settings import (
    DBT_PROJECT_DIR, SALT_CHANGE_VARIABLE, ConfigurationError, Settings, connect_work_db, dbt_parse_env, eprint,
)

DBT_TARGET_DIR = MANIFEST_PATH.parent
# The dbt of this interpreter's environment, started through the launcher that dies with its parent.
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")
DBT_LAUNCHER = Path(sys.executable).with_name("cs-warehouse-dbt")

# Files whose change makes a stored manifest stale.
_PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml")
_PROJECT_INPUT_DIRS = ("models", "macros", "seeds", "tests")

# The pipeline's build: seeds, models and data tests. dbt unit tests check the KPI formulas on
# fixed inputs, not the data, so they run in the test suite (tests/transform), not in every
# production build, where they cost a node each (20 of them, about 10 s at scale 1). Saved queries
# and exposures build nothing: dbt 1.11 lists each as a "no-op" result.
BUILD_COMMAND = ["build", *(arg for kind in ("unit_test", "saved_query", "exposure")
                            for arg in ("--exclude-resource-type", kind))]


def dbt_executable() -> str:
    return next((str(p) for p in (DBT_LAUNCHER, DBT_EXECUTABLE) if p.exists()), "dbt")


def replaced_partitions(work_db: Path) -> list[tuple[str, str]]:
    """(source, partition) of every partition a re-sent file replaced since the last full build.

    The incremental models see the keys a run adds or changes, not the keys a re-sent day no
    longer holds, so after a replacement the next build is a full refresh (``build_command``)."""
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
    macros = project_macros_sql(manifest)
    out = {}
    for node in model_nodes(manifest):
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
        before = incremental_model_fingerprints(load_manifest(previous))
    except (OSError, ValueError):
        # Truncated (a full disk during the last build) or damaged: what the tables were built
        # from is unknown, so every incremental model is rebuilt; the stale artefacts go.
        discard_damaged_artefacts(settings)
        return [UNREADABLE_MANIFEST]
    now = incremental_model_fingerprints(load_manifest(prepare_manifest()))
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


class SaltChanged(ConfigurationError):
    """The PII salt differs from the one the warehouse's marts were built with."""


def salt_fingerprint(salt: str) -> str:
    """A short one-way fingerprint of the salt (it identifies the salt, it does not reveal it)."""
    return hashlib.sha256(b"cs-warehouse customer-key salt\x00" + salt.encode("utf-8")).hexdigest()[:16]


def recorded_salt_fingerprint(work_db: Path) -> str | None:
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


def salt_change_reason(settings: Settings) -> str | None:
    """None if the salt is the one the marts were built with (or nothing was recorded yet); the
    full-refresh reason if it changed and ``CSWH_PII_SALT_CHANGED=1`` (``Settings.pii_salt_change_intended``)
    says that is intended; else SaltChanged with what to do."""
    recorded = recorded_salt_fingerprint(settings.work_db)
    current = salt_fingerprint(settings.pii_salt)
    if recorded is None or recorded == current:
        return None
    if settings.pii_salt_change_intended:
        return (f"the PII salt changed (fingerprint {recorded} -> {current}; {SALT_CHANGE_VARIABLE}=1): every "
                "customer key is recomputed")
    raise SaltChanged(
        f"the PII salt differs from the one this warehouse's marts were built with (fingerprint {recorded}, now "
        f"{current}). A build would mix customer keys of both salts. If the change is intended, run again with "
        f"{SALT_CHANGE_VARIABLE}=1 (a full refresh recomputes every key); otherwise restore CSWH_PII_SALT.")


def record_salt_fingerprint(settings: Settings) -> None:
    """After a complete build: the marts are built with this salt."""
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


# --------------------------------------------------------------------------- unchanged seeds
# The seeds (reference tables, the business calendar, the lexicons) change with a release, not with
# a day's data, yet they and the tests on them alone are a quarter of the build's nodes. A build
# after a verified one leaves them out when every seed is exactly as it was verified: the same file,
# config, columns, project macros and tests, its table present with the rows it was verified with.
# A verified seed is one whose load and every test on it alone passed in a completed build.
VERIFIED_SEEDS_TABLE = "raw._dbt_verified_seeds"


def seed_tests(manifest: dict) -> dict[str, list[str]]:
    """seed unique_id -> the data tests whose parents are all seeds (pure). A test between a model
    and a seed is the model's: it runs in every build."""
    nodes = manifest.get("nodes") or {}
    seeds = {uid for uid, n in nodes.items() if n.get("resource_type") == "seed"}
    out: dict[str, list[str]] = {uid: [] for uid in sorted(seeds)}
    for uid, node in sorted(nodes.items()):
        parents = set((node.get("depends_on") or {}).get("nodes") or [])
        if node.get("resource_type") == "test" and parents and parents <= seeds:
            for parent in sorted(parents):
                out[parent].append(uid)
    return out


def seed_fingerprints(manifest: dict) -> dict[str, str]:
    """seed unique_id -> fingerprint of everything its table and its tests are built from (pure)."""
    nodes = manifest.get("nodes") or {}
    macros = project_macros_sql(manifest)
    out = {}
    for uid, tests in seed_tests(manifest).items():
        node = nodes[uid]
        parts = [json.dumps([node.get("checksum"), node.get("config"), node.get("columns")], sort_keys=True, default=str),
                 macros, *(json.dumps([t, nodes[t].get("raw_code"), nodes[t].get("test_metadata"), nodes[t].get("config")],
                                      sort_keys=True, default=str) for t in tests)]
        out[uid] = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return out


def _seed_relation(node: dict) -> str:
    return f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'


def _verified_seeds(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int]]:
    try:
        return {uid: (fp, rows) for uid, fp, rows in con.execute(
            f"SELECT unique_id, fingerprint, row_count FROM {VERIFIED_SEEDS_TABLE}").fetchall()}
    except duckdb.CatalogException:
        return {}


def unchanged_seed_exclusions(settings: Settings, manifest: dict) -> list[str]:
    """The dbt names a build may leave out (every seed and the tests on seeds alone), or [] when any
    seed differs from its verified build, its table is missing or holds other rows."""
    if not settings.work_db.exists():
        return []
    nodes = manifest.get("nodes") or {}
    fingerprints = seed_fingerprints(manifest)
    if not fingerprints:
        return []
    con = connect_work_db(settings.work_db, read_only=True)
    try:
        verified = _verified_seeds(con)
        for uid, fingerprint in fingerprints.items():
            if verified.get(uid, (None, None))[0] != fingerprint:
                return []
            try:
                rows = con.execute(f"SELECT count(*) FROM {_seed_relation(nodes[uid])}").fetchone()[0]
            except duckdb.CatalogException:
                return []
            if rows != verified[uid][1]:
                return []
    finally:
        con.close()
    tests = seed_tests(manifest)
    return sorted({nodes[uid]["name"] for uid in fingerprints} | {nodes[t]["name"] for ts in tests.values() for t in ts})


def excluding(command: list[str], names: list[str]) -> list[str]:
    """``command`` without ``names``: with indirect selection off, so that leaving out a seed does
    not also leave out the tests of the models that refer to it (dbt's default, eager, would)."""
    # dbt takes a selection as one space-separated argument
    return [*command, "--indirect-selection", "empty", "--exclude", " ".join(names)] if names else list(command)


def record_verified_seeds(settings: Settings, manifest: dict, results: dict) -> list[str]:
    """After a completed build: every seed that loaded and whose tests on it alone all passed is
    verified with its fingerprint and row count. Returns the seeds recorded."""
    status = {r["unique_id"]: r["status"] for r in results.get("results") or []}
    nodes = manifest.get("nodes") or {}
    fingerprints = seed_fingerprints(manifest)
    passed = [uid for uid, tests in seed_tests(manifest).items()
              if status.get(uid) == "success" and all(status.get(t) == "pass" for t in tests)]
    if not passed:
        return []
    con = connect_work_db(settings.work_db)
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(f"CREATE TABLE IF NOT EXISTS {VERIFIED_SEEDS_TABLE} (unique_id VARCHAR PRIMARY KEY, "
                    "fingerprint VARCHAR, row_count BIGINT, verified_at TIMESTAMP)")
        for uid in passed:
            rows = con.execute(f"SELECT count(*) FROM {_seed_relation(nodes[uid])}").fetchone()[0]
            con.execute(f"INSERT OR REPLACE INTO {VERIFIED_SEEDS_TABLE} VALUES (?, ?, ?, now()::TIMESTAMP)",
                        [uid, fingerprints[uid], rows])
    finally:
        con.close()
    return passed


class DbtBuildError(RuntimeError):
    """A dbt command failed; ``failed_nodes`` names the models/tests/seeds that failed."""

    def __init__(self, message: str, failed_nodes: list[str]):
        super().__init__(message)
        self.failed_nodes = failed_nodes


def dbt_target_dir(settings: Settings) -> Path:
    """Where dbt commands against this warehouse write their artefacts."""
    return settings.warehouse_dir / "dbt_target"


def warehouse_manifest(settings: Settings) -> Path:
    """The manifest of the last dbt build on this warehouse (the definitions its marts were built
    from); the project's own before the first build."""
    built = dbt_target_dir(settings) / "manifest.json"
    return built if built.exists() else MANIFEST_PATH


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _profile_connection(settings: Settings) -> tuple[str, str]:
    """The hash dbt keeps of the profile's connection (``state_check.profile_hash``) for a build on
    ``settings``' work file, and the database name it gives every node: dbt/profiles.yml's target
    rendered with ``Settings.dbt_variables``."""
    # deferred: importing dbt's adapter costs about 2 s, and only a first build needs it
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.artifacts.resources.base import FileHash  # deferred with the adapter (its import cost)

    variables = settings.dbt_variables()

    def render(value):
        if isinstance(value, str):
            return jinja2.Template(value).render(env_var=lambda name, default=None: variables.get(name, default))
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        return value

    profiles = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8"))
    profile = next(v for k, v in profiles.items() if k != "flags")
    output = render(dict(profile["outputs"][profile["target"]]))
    output.pop("type", None)
    output.pop("threads", None)
    output.setdefault("schema", "main")
    credentials = DuckDBCredentials.from_dict(output)
    return FileHash.from_contents(pprint.pformat(sorted(credentials.connection_info()))).checksum, credentials.database


def seed_partial_parse(settings: Settings, target_dir: Path) -> bool:
    """Give the first dbt command on a warehouse the project's parse (``prepare_manifest``).

    dbt discards a saved parse when the profile's connection changed, and the work file's path and
    the salt are in the connection: without this, the first build of every new warehouse re-parses
    the whole project (about 10 s for 275 nodes on two cores). The project parse is the same files
    read with placeholder connection values; what the connection gives a parse is the database name
    of every node (the work file's stem, ``work`` for both) and ``target.schema`` (the same), so the
    parse is kept under this warehouse's profile hash when the database names agree. dbt still
    re-parses every file whose checksum changed. Returns whether it seeded."""
    destination = target_dir / PARTIAL_PARSE_FILE
    source = DBT_TARGET_DIR / PARTIAL_PARSE_FILE
    # The project parse renders target.type == 'duckdb' (file formats, dispatched macros): never
    # a parse for the Spark target.
    if settings.engine != "duckdb" or destination.exists() or not source.exists():
        return False
    import msgpack  # deferred: with the dbt import above, only a first build pays its import cost

    with open(source, "rb") as fh:
        state = msgpack.unpack(fh, raw=False, strict_map_key=False)
    profile_hash, database = _profile_connection(settings)
    if {node.get("database") for node in (state.get("nodes") or {}).values()} != {database}:
        return False  # a work file named otherwise: its nodes live in another database, let dbt parse
    state["state_check"]["profile_hash"] = {"name": "sha256", "checksum": profile_hash}
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    with open(partial, "wb") as fh:
        msgpack.pack(state, fh)
    os.replace(partial, destination)
    return True


def _common_args(target_dir: Path, log_dir: Path) -> list[str]:
    return ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(target_dir), "--log-path", str(log_dir), "--no-use-colors"]


def _run(args: list[str], env: dict[str, str], log_file: Path) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as log:
        return subprocess.run([dbt_executable(), *args], env=env, cwd=DBT_PROJECT_DIR, stdout=log,
                              stderr=subprocess.STDOUT, check=False).returncode


def node_statuses(run_results: dict) -> tuple[dict[str, int], list[str]]:
    """(count per status, unique ids of failed nodes) of a run_results.json document (pure)."""
    counts: dict[str, int] = {}
    failed = []
    for result in run_results.get("results") or []:
        status = str(result.get("status", "unknown")).lower()
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            failed.append(result.get("unique_id", "?"))
    return counts, failed


def run_dbt(settings: Settings, command: Iterable[str], target_dir: Path | None = None) -> dict:
    """Run one dbt command (e.g. ``["test", "--select", "test_type:unit"]``) against the settings'
    work file in a dbt subprocess; raise DbtBuildError naming the failed nodes on failure.

    ``target_dir`` keeps the command's artefacts apart from the warehouse's own (its manifest and
    compiled SQL are those of the build that wrote the marts; a later ``dbt test`` would overwrite
    them with the compiled SQL of unit tests)."""
    command = list(command)
    target = target_dir or dbt_target_dir(settings)
    if target_dir is not None:
        target.mkdir(parents=True, exist_ok=True)
        partial = dbt_target_dir(settings) / PARTIAL_PARSE_FILE
        if partial.exists() and not (target / partial.name).exists():
            shutil.copyfile(partial, target / partial.name)  # no full re-parse for a side command
    seed_partial_parse(settings, target)
    log_dir = settings.warehouse_dir / "dbt_logs"
    started = time.perf_counter()
    results_file = target / "run_results.json"
    results_file.unlink(missing_ok=True)
    returncode = _run([*command, *_common_args(target, log_dir), "--quiet"],
                      settings.dbt_env(parent_pid=os.getpid()), log_dir / "commands.log")
    elapsed = time.perf_counter() - started
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {}
    counts, failed = node_statuses(results)
    if returncode != 0 or failed:
        detail = ""
        messages = " ".join(str(r.get("message") or "") for r in results.get("results") or []).lower()
        if "no space left" in messages or "disk full" in messages:
            detail = ": no space left on the device (the failing nodes below failed for that reason)"
        raise DbtBuildError(
            f"dbt {' '.join(command)} failed on {settings.work_db} (exit code {returncode}){detail}; failed nodes: "
            f"{', '.join(failed) or 'none reported'} (log: {log_dir / 'commands.log'})", failed)
    return {"command": command, "success": True, "elapsed_seconds": elapsed, "statuses": counts,
            "target_dir": str(target)}


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
    """Return dbt/target/manifest.json, running ``dbt parse`` (offline, no database opened) first
    if it is missing or older than any model, macro, seed, test or project file."""
    if not (force or manifest_is_stale()):
        return MANIFEST_PATH
    # Several processes load the definitions at once (the UI's code server and a CLI run, or test
    # workers): one parses, the others wait and then find the manifest fresh.
    DBT_TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with open(DBT_TARGET_DIR / ".parse.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or manifest_is_stale():
            log_dir = DBT_PROJECT_DIR / "logs"
            returncode = _run(["parse", "--quiet", *_common_args(DBT_TARGET_DIR, log_dir)],
                              dbt_parse_env(DBT_TARGET_DIR), log_dir / "parse.log")
            if returncode != 0 or not MANIFEST_PATH.exists():
                raise DbtBuildError(f"dbt parse of {DBT_PROJECT_DIR} failed (exit code {returncode}); "
                                    f"see {log_dir / 'parse.log'}", [])
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
    """The last dbt command's run_results.json (timings per node), for benchmarks and tests."""
    return json.loads((dbt_target_dir(settings) / "run_results.json").read_text(encoding="utf-8"))
