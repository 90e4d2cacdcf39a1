"""Dagster side of ingest: one asset per landing source (``lib/ingest/<source>.py`` does the work).

- Asset key ``["raw", <source>]``, group ``ingest_<source>``; the warehouse's monthly partitions
  (``defs/partitions.py``): a partition is a month and holds the month's daily files (or its audit
  workbook).
- ``BackfillPolicy.single_run()``: a range of months is one run and one DuckDB connection, with all
  its files read in batches — a two-year backlog is one step per source, not 24 runs.
- ``pool="work_duckdb"``: DuckDB has one writer per file; the instance's pool limit (1, see
  ``config/dagster.yaml``) lets one step at a time write the work file, so materializing every
  ingest asset at once from the UI queues instead of failing with a lock error.
- A landing file that cannot be read (``failed``) or that a file-level rule refuses (``held_back``)
  is recorded in the ledger with its reason and keeps its partition's earlier load; the step goes
  on with the other files and succeeds (docs/ingest.md, "Proportionate gates"). The run still ends
  failed, naming the file: the ``complete_inputs`` check of the publish asset
  (``defs/quality/checks.py``) fails after the readable files were built and published. One rule,
  wherever the run was started (docs/architecture.md#an-unreadable-landing-file).
- Every partition's materialization carries its own counts: files (loaded, unchanged, failed, held
  back), rows landed, loaded and quarantined by this run, the month's stale partitions with their
  reasons, and ``dagster/row_count``, the month's rows in raw.
"""

import warnings
from datetime import date, timedelta

import dagster as dg

from dagster_project.defs.conventions import OWNERS, WORK_DB_POOL
from dagster_project.lib.ingest.contract import LINEAGE_COLUMNS, SourceContract
from dagster_project.lib.ingest.loader import PartitionResult, ingest_partitions
from dagster_project.lib.ingest.sources import CONTRACTS
from dagster_project.lib.planning import period_of
from dagster_project.settings import Settings, connect_work_db

PREVIEW_ROWS = 5


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
        f"{', '.join(contract.key)}. Partitioned by month; a re-sent file replaces its day, an unchanged "
        "one is skipped (ledger `raw._ingest_ledger`, docs/ingest.md)."
    )


def file_partitions(contract: SourceContract, months: list[str]) -> list[str]:
    """The landing-file partition keys inside the given months: every day (daily sources) or the
    month's first day (monthly sources). Pure."""
    if contract.partitioning == "monthly":
        return sorted(months)
    days = []
    for month in sorted(months):
        day = date.fromisoformat(month)
        while day.month == date.fromisoformat(month).month:
            days.append(day.isoformat())
            day += timedelta(days=1)
    return days


def partition_metadata(results: list[PartitionResult], row_counts: dict[str, int]) -> dict[str, dict]:
    """month -> the metadata of its materialization (pure)."""
    out: dict[str, dict] = {}
    for result in results:
        month = period_of(result.partition)
        m = out.setdefault(month, {"files": 0, "files_loaded": 0, "files_unchanged": 0, "files_failed": 0,
                                   "files_held_back": 0, "rows_landed": 0, "rows_loaded": 0, "rows_quarantined": 0})
        for f in result.files:
            m["files"] += 1
            m["files_loaded"] += f.status == "loaded"
            m["files_unchanged"] += f.status == "skipped"
            m["files_failed"] += f.status == "failed"
            m["files_held_back"] += f.status == "held_back"
            if f.status in ("failed", "held_back"):
                m.setdefault("stale_partitions", []).append(
                    {"partition": f.partition, "path": f.path, "status": f.status, "reason": f.message})
            if f.status == "loaded":
                m["rows_landed"] += f.rows_landed
                m["rows_loaded"] += f.rows_loaded
                m["rows_quarantined"] += f.rows_quarantined
    for month, m in out.items():
        m["dagster/row_count"] = row_counts.get(month, 0)
        if "stale_partitions" in m:
            m["stale_partitions"] = dg.MetadataValue.json(m["stale_partitions"])
    return out


def month_row_counts(settings: Settings, contract: SourceContract, months: list[str]) -> dict[str, int]:
    """Rows in raw per month, for the months of the run."""
    con = connect_work_db(settings.work_db)  # read-write: same config as the loader in this process
    try:
        rows = con.execute(
            f"SELECT substr(_partition, 1, 7) || '-01', count(*) FROM {contract.raw_table} "
            "WHERE substr(_partition, 1, 7) || '-01' IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [months]).fetchall()
    finally:
        con.close()
    return {month: int(n) for month, n in rows}


def preview_markdown(settings: Settings, contract: SourceContract, partitions: list[str]) -> str:
    """A few loaded rows of the given file partitions, PII columns left out."""
    columns = [c.name for c in contract.columns if not c.sensitive][:10]
    con = connect_work_db(settings.work_db)
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


def build_ingest_asset(contract: SourceContract, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    source = contract.source

    # Single-run backfills are "beta" in Dagster 1.13; this project depends on them (a backlog is one
    # run), so the BetaWarning the decorator raises for the parameter is expected and not shown.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset`",
                                category=dg.BetaWarning)

        @dg.asset(
            name=source,
            key_prefix=["raw"],
            group_name=f"ingest_{source}",
            kinds={"duckdb", "python"},
            owners=OWNERS,
            description=asset_description(contract),
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=WORK_DB_POOL,
            metadata={"dagster/column_schema": table_schema(contract), "landing_folder": contract.folder},
        )
        def _ingest(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
            months = sorted(context.partition_keys)
            results = ingest_partitions(warehouse, source, file_partitions(contract, months), run_id=context.run.run_id)
            per_month = partition_metadata(results, month_row_counts(warehouse, contract, months))
            for result in results:
                for f in result.files:
                    if f.status in ("failed", "held_back"):
                        context.log.warning(f.message)  # messages never quote landing data (lib/ingest/guard.py)
            loaded = [r.partition for r in results if r.status == "loaded"]
            for month in months:
                metadata = per_month.get(month) or {"files": 0, "dagster/row_count": 0}
                if loaded and month == period_of(max(loaded)):
                    metadata["preview"] = dg.MetadataValue.md(preview_markdown(warehouse, contract, loaded))
                context.add_asset_metadata(metadata, partition_key=month)
            stale = sum(m.get("files_failed", 0) + m.get("files_held_back", 0) for m in per_month.values())
            context.log.info(f"{source}: {sum(m['files'] for m in per_month.values())} file(s) in "
                             f"{len(months)} month(s), {sum(m['files_loaded'] for m in per_month.values())} loaded"
                             + (f", {stale} not loaded (failed or held back; see the ledger)" if stale else ""))
            return dg.MaterializeResult()

    return _ingest


def build_ingest_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_ingest_asset(c, partitions_def) for c in CONTRACTS.values()]


def ingest_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source])
