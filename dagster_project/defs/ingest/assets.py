"""Dagster side of ingest: one asset per source, partitions, the landing sensor and ingest jobs.

- Asset key ``["raw", <source>]``, group ``ingest_<source>``; daily partitions (audits monthly),
  starting at ``$CSWH_PARTITIONS_START`` (default 2024-01-01, the sample data's first day).
- ``BackfillPolicy.single_run()``: a partition range is one run and one DuckDB connection, with
  all its files read in batches — a two-year backfill is a single step, not 730 runs.
- ``pool="work_duckdb"``: DuckDB has one writer per file; the instance's pool limit (1, see
  ``config/dagster.yaml``) lets one step at a time write the work file, so materializing every
  ingest asset at once from the UI queues instead of failing with a lock error.
- An unreadable file fails its partition (the other partitions of the range are committed) and
  then the step, with every failing file and its reason, unless the run config sets
  ``fail_on_unreadable_file: false``.
- Jobs: a run targets one partitions definition, so the five daily sources run in ``ingest_all``
  and the monthly audit workbooks in ``ingest_audits``. ``ingest_run_requests`` plans the runs for
  files present (CLI) or changed (sensor) as partition *ranges* (tags
  ``dagster/asset_partition_range_start|end``) with deterministic run keys.
"""


import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.settings import Settings, connect_work_db
from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.contract import LINEAGE_COLUMNS, SourceContract
from dagster_project.lib.ingest.landing import candidate_paths, partitions_start, sha256_of
from dagster_project.lib.ingest.loader import ingest_partitions
from dagster_project.defs.resources import WarehouseResource
from dagster_project.defs.conventions import OWNERS, RANGE_END_TAG, RANGE_START_TAG, WORK_DB_POOL

PARTITIONS_START = partitions_start().isoformat()  # $CSWH_PARTITIONS_START, the landing boundary's first day
TIMEZONE = "Asia/Shanghai"  # landing days are local days
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone=TIMEZONE)
MONTHLY_PARTITIONS = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START[:7] + "-01", timezone=TIMEZONE)
PREVIEW_ROWS = 5


def partitions_def_for(contract: SourceContract) -> dg.PartitionsDefinition:
    return MONTHLY_PARTITIONS if contract.partitioning == "monthly" else DAILY_PARTITIONS


def table_schema(contract: SourceContract) -> dg.TableSchema:
    columns = [
        dg.TableColumn(
            c.name, c.type,
            description=" ".join(filter(None, [
                c.description, "PII." if c.pii else "", "required." if c.required else "",
                f"codes: {', '.join(c.codes)}." if c.codes and len(c.codes) <= 12 else "",
                f"pattern {c.pattern}." if c.pattern else "",
            ])) or None,
        )
        for c in contract.columns
    ]
    columns += [dg.TableColumn(n, t, description="lineage") for n, t in LINEAGE_COLUMNS]
    return dg.TableSchema(columns=columns)


def asset_description(contract: SourceContract) -> str:
    stem = "YYYY-MM" if contract.partitioning == "monthly" else "YYYY-MM-DD"
    return (
        f"{contract.description}\n\nLanding files `{contract.folder}/{stem}{contract.file_suffix}` "
        f"({contract.file_format}, {contract.encoding}) loaded into `{contract.raw_table}`; rows that "
        f"break the contract go to `{contract.quarantine_table}` with a reason code. Key: "
        f"{', '.join(contract.key)}. {contract.partitioning.capitalize()} partitions; a re-sent file "
        "replaces its partition, an unchanged one is skipped (ledger `raw._ingest_ledger`)."
    )


class IngestConfig(dg.Config):
    # A bad file holds back only its partition (docs/ingest.md, "Proportionate gates"): the step
    # succeeds, names the file in its metadata and log; true makes an unreadable file fail the step.
    fail_on_unreadable_file: bool = False


def preview_markdown(settings: Settings, contract: SourceContract, partitions: list[str]) -> str:
    """A few loaded rows of the materialized partitions, PII columns left out."""
    columns = [c.name for c in contract.columns if not c.sensitive][:10]
    con = connect_work_db(settings.work_db)  # read-write: same config as the loader in this process
    try:
        rows = con.execute(
            f"SELECT {', '.join(columns)} FROM {contract.raw_table} WHERE _partition IN "
            f"(SELECT unnest(?::VARCHAR[])) ORDER BY _partition DESC, _source_line LIMIT {PREVIEW_ROWS}",
            [partitions],
        ).fetchall()
    finally:
        con.close()
    cell = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")[:40]  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table_row_count(settings: Settings, contract: SourceContract) -> int:
    con = connect_work_db(settings.work_db)  # read-write: same config as the loader in this process
    try:
        return int(con.execute(f"SELECT count(*) FROM {contract.raw_table}").fetchall()[0][0])
    finally:
        con.close()


def build_ingest_asset(contract: SourceContract) -> dg.AssetsDefinition:
    source = contract.source

    @dg.asset(
        name=source,
        key_prefix=["raw"],
        group_name=f"ingest_{source}",
        kinds={"duckdb", "python"},
        owners=OWNERS,
        description=asset_description(contract),
        partitions_def=partitions_def_for(contract),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WORK_DB_POOL,
        metadata={"dagster/column_schema": table_schema(contract), "landing_folder": contract.folder},
    )
    def _ingest(context: dg.AssetExecutionContext, config: IngestConfig,
                warehouse: WarehouseResource) -> dg.MaterializeResult:
        settings = warehouse.settings()
        keys = list(context.partition_keys)
        results = ingest_partitions(settings, source, keys, run_id=context.run.run_id)
        files = [f for r in results for f in r.files]
        loaded = [f for f in files if f.status == "loaded"]
        failed = [f for f in files if f.status == "failed"]
        held_back = [f for f in files if f.status == "held_back"]
        without_file = [r.partition for r in results if r.status == "no_file"]
        metadata = {
            "partitions": len(keys),
            "files": len(files),
            "files_loaded": len(loaded),
            "files_unchanged": sum(f.status == "skipped" for f in files),
            "files_failed": len(failed),
            "files_held_back": len(held_back),
            "partitions_without_file": len(without_file),
            "rows_landed": sum(f.rows_landed for f in loaded),
            "rows_loaded": sum(f.rows_loaded for f in loaded),
            "rows_quarantined": sum(f.rows_quarantined for f in loaded),
        }
        for f in failed + held_back:
            context.log.warning(f.message)  # messages never quote landing data (lib/ingest/guard.py)
        if failed or held_back:
            metadata["stale_partitions"] = dg.MetadataValue.json(
                [{"partition": f.partition, "path": f.path, "status": f.status, "reason": f.message}
                 for f in failed + held_back])
        if failed and config.fail_on_unreadable_file:
            raise dg.Failure(
                description=f"{len(failed)} {source} file(s) could not be read; their partitions were "
                "not loaded (the others were):\n" + "\n".join(f"- {f.message}" for f in failed),
                metadata={**metadata, "failed_files": dg.MetadataValue.json([f.message for f in failed])},
            )
        # The column schema is the definition's metadata (shown on the asset page); repeating it
        # here would copy it into the materialization of every partition of a backlog run, which
        # measured as 2 s of serialization per source for two years of daily partitions.
        return dg.MaterializeResult(metadata={
            **metadata,
            "dagster/row_count": table_row_count(settings, contract),
            "preview": dg.MetadataValue.md(preview_markdown(settings, contract, keys)),
        })

    return _ingest


INGEST_ASSETS: list[dg.AssetsDefinition] = [build_ingest_asset(c) for c in CONTRACTS.values()]
ASSETS_BY_SOURCE = {c.source: a for c, a in zip(CONTRACTS.values(), INGEST_ASSETS)}
audits_asset = ASSETS_BY_SOURCE["audits"]
DAILY_SOURCES = tuple(s for s, c in CONTRACTS.items() if c.partitioning == "daily")
MONTHLY_SOURCES = tuple(s for s, c in CONTRACTS.items() if c.partitioning == "monthly")

ingest_all = dg.define_asset_job(
    name="ingest_all",
    description="Load the landing files of the five daily sources (policies, claims, calls, surveys, "
    "complaints) for a range of days into raw.*; unchanged files are skipped.",
    selection=dg.AssetSelection.assets(*(ASSETS_BY_SOURCE[s] for s in DAILY_SOURCES)),
    executor_def=dg.in_process_executor,
)
ingest_audits = dg.define_asset_job(
    name="ingest_audits",
    description="Load the monthly mystery-shopping audit workbooks (audits/YYYY-MM.xlsx).",
    selection=dg.AssetSelection.assets(audits_asset),
    executor_def=dg.in_process_executor,
)
# (Partitioning is inferred from the selected assets; steps run in-process, one after the other.)
INGEST_JOBS = [ingest_all, ingest_audits]


# ------------------------------------------------------------------------------ run planning


def partitions_with_files(landing_dir: Path, source: str) -> list[str]:
    """Partition keys of a source that have a correctly named landing file (no hashing)."""
    return [partition for partition, _ in candidate_paths(Path(landing_dir), CONTRACTS[source])]


@dataclass(frozen=True)
class PlannedRun:
    job_name: str
    start: str
    end: str
    sources: tuple[str, ...]
    run_key: str


def plan_ingest_runs(entries: list[tuple[str, str, str]], known_partitions: dict[str, set[str]] | None = None
                     ) -> list[PlannedRun]:
    """Group (source, partition, sha256) entries into one partition-range run per job.

    One range from the first to the last partition with a file: partitions in between whose files
    are unchanged are no-ops (ledger), and one run keeps one DuckDB connection. The run key hashes
    every entry, so the same files always give the same key and any change gives a new one.
    ``known_partitions`` (job -> valid keys) drops files whose day the partitions definition does
    not have yet (e.g. a file dated today).
    """
    runs = []
    for job_name, sources in (("ingest_all", DAILY_SOURCES), ("ingest_audits", MONTHLY_SOURCES)):
        chosen = sorted(e for e in entries if e[0] in sources)
        if known_partitions is not None:
            chosen = [e for e in chosen if e[1] in known_partitions.get(job_name, set())]
        if not chosen:
            continue
        start = min(e[1] for e in chosen)
        end = max(e[1] for e in chosen)
        digest = hashlib.sha256("\n".join("|".join(e) for e in chosen).encode()).hexdigest()[:16]
        involved = tuple(s for s in sources if any(e[0] == s for e in chosen))
        runs.append(PlannedRun(job_name, start, end, involved, f"{job_name}:{start}..{end}:{digest}"))
    return runs


def run_request_for(plan: PlannedRun) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=plan.run_key,
        job_name=plan.job_name,
        asset_selection=[dg.AssetKey(["raw", s]) for s in plan.sources],
        tags={RANGE_START_TAG: plan.start, RANGE_END_TAG: plan.end},
    )


def _known_partitions() -> dict[str, set[str]]:
    return {"ingest_all": set(DAILY_PARTITIONS.get_partition_keys()),
            "ingest_audits": set(MONTHLY_PARTITIONS.get_partition_keys())}


def ingest_run_requests(landing_dir: Path, entries: list[tuple[str, str, str]] | None = None
                        ) -> list[dg.RunRequest]:
    """RunRequests covering ``entries`` (source, partition, sha256), by default every landing file."""
    if entries is None:
        entries = [
            (source, partition, sha256_of(path))
            for source, contract in CONTRACTS.items()
            for partition, path in candidate_paths(Path(landing_dir), contract)
        ]
    return [run_request_for(p) for p in plan_ingest_runs(entries, _known_partitions())]


def scan_landing(landing_dir: Path, previous: dict[str, list]) -> tuple[dict[str, list], list[tuple[str, str, str]]]:
    """(new cursor state, changed entries). The state maps a file's relative path to
    [size, mtime_ns, sha256]; a file is re-hashed only when its size or mtime moved, and counts as
    changed only when its sha256 did."""
    state: dict[str, list] = {}
    changed: list[tuple[str, str, str]] = []
    for source, contract in CONTRACTS.items():
        for partition, path in candidate_paths(Path(landing_dir), contract):
            rel = path.relative_to(landing_dir).as_posix()
            stat = path.stat()
            old = previous.get(rel)
            if old and old[0] == stat.st_size and old[1] == stat.st_mtime_ns:
                state[rel] = old
                continue
            sha = sha256_of(path)
            state[rel] = [stat.st_size, stat.st_mtime_ns, sha]
            if not old or old[2] != sha:
                changed.append((source, partition, sha))
    return state, changed


@dg.sensor(
    name="landing_sensor",
    jobs=INGEST_JOBS,
    minimum_interval_seconds=60,
    description="Watches the landing folder and requests ingest runs (partition ranges) for new or "
    "changed files. Run keys are derived from source, partition and sha256, so a file is never "
    "requested twice; re-sent files (new content) get a new run.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    landing_dir = warehouse.settings().landing_dir
    previous = json.loads(context.cursor) if context.cursor else {}
    state, changed = scan_landing(landing_dir, previous)
    requests = ingest_run_requests(landing_dir, changed) if changed else []
    cursor = json.dumps(state, sort_keys=True, separators=(",", ":"))
    if not requests:
        return dg.SensorResult(skip_reason=f"no new or changed files under {landing_dir}", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
