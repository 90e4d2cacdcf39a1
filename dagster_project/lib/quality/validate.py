"""Load the Great Expectations suites in ``expectations/`` and validate them inside DuckDB.

A suite is a GX 1.x ``ExpectationSuite`` as JSON, reviewed like code. Suite ``meta`` says what it
validates (``table``, ``layer`` raw|marts, ``asset_key``). Every expectation's ``meta`` carries
``severity`` (``critical`` blocks the publish, ``warning`` is reported) and ``why``.

Cross-table rules (row counts against the ingest ledger, reconciliations with staging) are GX
``unexpected_rows_expectation``s: the SQL runs in DuckDB and returns the offending rows, so they
are reported like any other expectation. A suite may also ask for a PII scan
(``meta.pii_scan``): it is expanded at validation time into one unexpected-rows expectation per
text column of the table, so a column added later is scanned too.

Validation runs in GX SQL mode through ``gx_duckdb`` (never a pandas load of a table).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import duckdb

from dagster_project.settings import EXPECTATIONS_DIR, Settings, connect_work_db
from dagster_project.lib.ingest.sources import CONTRACTS
from dagster_project.lib.quality import gx_duckdb
from dagster_project.lib.quality.report import write_summary
from dagster_project.lib.quality.results import ExpectationOutcome, SuiteResult
from dagster_project.lib.sql import quote_ident, sql_literal

SEVERITIES = ("critical", "warning")
SAMPLE_SIZE = 10

# PII patterns, shared with the publish audit (lib/publish/publish.py). Digit boundaries keep 12-digit
# business ids (E…, CA…, R…) from matching the 11-digit phone pattern; 64-hex salted hashes are
# exempt since they are not PII.
PHONE_REGEX = r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)"
ID_CARD_REGEX = r"(^|[^0-9])[0-9]{17}[0-9Xx]([^0-9]|$)"
HASH_REGEX = r"^[0-9a-f]{64}$"


class SuiteError(ValueError):
    """A suite file is malformed (named with the file and the expectation index)."""


# ---------------------------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------------------------

def suite_path(suite_name: str, expectations_dir: Path = EXPECTATIONS_DIR) -> Path:
    return expectations_dir / f"{suite_name}.json"


def load_suite_dict(suite_name: str, expectations_dir: Path = EXPECTATIONS_DIR) -> dict:
    """The suite JSON, checked for the project's rules (meta.table/layer, severity and why), its
    value-set references resolved (``resolve_value_sets``)."""
    path = suite_path(suite_name, expectations_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SuiteError(f"{path}: no such suite file") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    check_suite_dict(data, str(path))
    return resolve_value_sets(data, str(path))


def code_list(reference: str) -> tuple[str, ...]:
    """The codes of ``<source>.<column>``: the landing contract's code list of that column, which
    is built from the reference data (``lib/reference.py``; the dbt seeds are written from it)."""
    source, _, column = reference.partition(".")
    try:
        codes = CONTRACTS[source].column(column).codes
    except KeyError:
        codes = None
    if not codes:
        raise SuiteError(f"value set {{'$codes': {reference!r}}}: {source}.{column} has no code list in its contract")
    return tuple(codes)


def resolve_value_sets(data: dict, origin: str) -> dict:
    """``"value_set": {"$codes": "<source>.<column>"}`` -> the contract's code list, so that a code
    list (the 20 branch codes, the stages, the call queues ...) lives in one place. Pure."""
    data = copy.deepcopy(data)
    for index, expectation in enumerate(data.get("expectations") or []):
        kwargs = expectation.get("kwargs") or {}
        value_set = kwargs.get("value_set")
        if isinstance(value_set, dict):
            if set(value_set) != {"$codes"}:
                raise SuiteError(f"{origin}: expectation #{index}: a value_set object must be {{'$codes': '<source>.<column>'}}")
            try:
                kwargs["value_set"] = list(code_list(value_set["$codes"]))
            except SuiteError as exc:
                raise SuiteError(f"{origin}: expectation #{index}: {exc}") from None
    return data


def check_suite_dict(data: dict, origin: str) -> None:
    meta = data.get("meta") or {}
    for key in ("table", "layer", "asset_key"):
        if not meta.get(key):
            raise SuiteError(f"{origin}: suite meta.{key} is missing")
    if meta["layer"] not in ("raw", "marts"):
        raise SuiteError(f"{origin}: meta.layer must be raw or marts, got {meta['layer']!r}")
    for index, expectation in enumerate(data.get("expectations") or []):
        exp_meta = expectation.get("meta") or {}
        where = f"{origin}: expectation #{index} ({expectation.get('type')})"
        if exp_meta.get("severity") not in SEVERITIES:
            raise SuiteError(f"{where}: meta.severity must be one of {SEVERITIES}")
        if not exp_meta.get("why"):
            raise SuiteError(f"{where}: meta.why is missing")
    pii = meta.get("pii_scan")
    if pii is not None and pii.get("severity") not in SEVERITIES:
        raise SuiteError(f"{origin}: meta.pii_scan.severity must be one of {SEVERITIES}")


def list_suites(layer: str | None = None, expectations_dir: Path = EXPECTATIONS_DIR) -> list[str]:
    names = []
    for path in sorted(expectations_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if layer is None or (data.get("meta") or {}).get("layer") == layer:
            names.append(path.stem)
    return names


def _gx_escaped(sql: str) -> str:
    # GX fills ``{batch}`` in an unexpected-rows query with ``str.format``: other braces are doubled
    return sql.replace("{", "{{").replace("}", "}}")


def gx_query_literal(value: str) -> str:
    """A SQL string literal inside a GX unexpected-rows query (regex quantifiers keep their braces)."""
    return _gx_escaped(sql_literal(value))


def gx_query_ident(name: str) -> str:
    """A quoted identifier inside a GX unexpected-rows query."""
    return _gx_escaped(quote_ident(name))


def pii_scan_query(column: str, *, names_table: str | None) -> str:
    """Rows of ``{batch}`` whose text ``column`` holds a phone or ID number, or a known
    complainant name. Pure string building, unit-tested."""
    col = gx_query_ident(column)
    conditions = [
        f"(regexp_matches({col}, {gx_query_literal(PHONE_REGEX)}) or "
        f"regexp_matches({col}, {gx_query_literal(ID_CARD_REGEX)}))"
        f" and not regexp_full_match({col}, {gx_query_literal(HASH_REGEX)})"
    ]
    if names_table:
        conditions.append(f"{col} in (select complainant_name from {names_table} "
                          "where complainant_name is not null and length(complainant_name) > 0)")
    where = " or ".join(f"({c})" for c in conditions)
    return f"select {col} from {{batch}} where {col} is not null and ({where})"


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".", 1)
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name]).fetchone()[0])


def text_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "and data_type = 'VARCHAR' order by ordinal_position", [schema, name]).fetchall()
    return [r[0] for r in rows]


# GX's SQL for the uniqueness expectations joins every row of the table, with every column, to
# the per-key counts; on the raw tables those queries were 2.6 s of the raw gates' 5.5 s of SQL
# (scale 10). A duplicate-key query finds the same violations from one aggregation and names the
# keys. Only the plain form is rewritten (nulls ignored as GX does; no `mostly`).
UNIQUE_EXPECTATIONS = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


def duplicate_keys_query(columns: Sequence[str]) -> str:
    """Rows of ``{batch}``: each key of ``columns`` held by more than one row, with its number of
    rows. Rows whose key columns are all null are ignored, like GX's uniqueness expectations.
    Pure string building, unit-tested."""
    cols = [gx_query_ident(c) for c in columns]
    key = ", ".join(cols)
    all_null = " and ".join(f"{c} is null" for c in cols)
    return (f"select {key}, count(*) as copies from {{batch}} where not ({all_null}) "
            f"group by {key} having count(*) > 1")


def _as_duplicate_keys_expectation(expectation: dict) -> dict | None:
    kwargs = expectation.get("kwargs") or {}
    if expectation["type"] not in UNIQUE_EXPECTATIONS or set(kwargs) - {"column", "column_list"}:
        return None
    columns = [kwargs["column"]] if "column" in kwargs else list(kwargs["column_list"])
    return {
        "type": "unexpected_rows_expectation",
        "kwargs": {"unexpected_rows_query": duplicate_keys_query(columns),
                   "description": f"unique ({', '.join(columns)})"},
        "meta": {**(expectation.get("meta") or {}), "column": ",".join(columns),
                 "suite_type": expectation["type"]},
    }


def expand_suite(data: dict, con: duckdb.DuckDBPyConnection) -> dict:
    """Resolve the runtime parts of a suite: uniqueness as duplicate-key queries, the PII scan
    per text column."""
    data = copy.deepcopy(data)
    data["expectations"] = [_as_duplicate_keys_expectation(e) or e for e in data["expectations"]]
    meta = data["meta"]
    pii = meta.get("pii_scan")
    if pii:
        names_table = "raw.complaints" if _table_exists(con, "raw.complaints") else None
        for column in text_columns(con, meta["table"]):
            data["expectations"].append({
                "type": "unexpected_rows_expectation",
                "kwargs": {"unexpected_rows_query": pii_scan_query(column, names_table=names_table),
                           "description": f"no PII in {column}"},
                "meta": {"severity": pii["severity"], "column": column,
                         "why": pii.get("why", "names, phones and ID numbers never reach a mart")},
            })
    return data


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _outcome_from_gx(result, expectation_config: dict) -> ExpectationOutcome:
    meta = expectation_config.get("meta") or {}
    kwargs = expectation_config.get("kwargs") or {}
    column = kwargs.get("column") or meta.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(kwargs["column_list"])
    if column is None and kwargs.get("column_A"):
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    res = result.result or {}
    error = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        error = result.exception_info.get("exception_message")
    else:
        for info in (result.exception_info or {}).values():
            if isinstance(info, dict) and info.get("raised_exception"):
                error = info.get("exception_message")
                break
    sample = res.get("partial_unexpected_list") or []
    if not sample:
        details = res.get("details") or {}
        rows = details.get("unexpected_rows") or []
        sample = [r if not isinstance(r, dict) else {k: str(v) for k, v in r.items()} for r in rows]
    unexpected = res.get("unexpected_count")
    observed = res.get("observed_value")
    if unexpected is None and expectation_config["type"] == "unexpected_rows_expectation":
        unexpected = observed if isinstance(observed, int) else None
    return ExpectationOutcome(
        expectation_type=meta.get("suite_type", expectation_config["type"]),
        column=column,
        severity=meta.get("severity", "critical"),
        why=meta.get("why", ""),
        success=bool(result.success) and error is None,
        unexpected_count=unexpected,
        unexpected_percent=res.get("unexpected_percent"),
        element_count=res.get("element_count"),
        observed_value=None if isinstance(observed, (dict, list)) else observed,
        sample=[str(s) if not isinstance(s, (int, float, str)) else s for s in sample[:SAMPLE_SIZE]],
        error=error,
        description=kwargs.get("description"),
    )


def _db_path_and_mode(con_or_path) -> tuple[Path, bool]:
    """A DuckDB file path and whether to open it read-only. A connection given by the caller is
    reopened on the same file with the same access mode (DuckDB shares the database in-process
    only when the configuration matches)."""
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        path = con_or_path.execute(
            "select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
        if not path:
            raise ValueError("validate_suite needs a file-backed DuckDB connection, not an in-memory one")
        mode = con_or_path.execute("select current_setting('access_mode')").fetchone()[0]
        return Path(path), str(mode).lower() == "read_only"
    return Path(con_or_path), True


def validate_suite(con_or_path, suite_name: str, *, settings: Settings | None = None,
                   expectations_dir: Path = EXPECTATIONS_DIR,
                   partitions: Sequence[str] | None = None) -> SuiteResult:
    """Validate one suite against its table inside DuckDB (GX SQL mode); see ``validate_suites``.

    ``con_or_path`` is the DuckDB file (or an open connection on it); ``settings`` is accepted for
    symmetry with the rest of the package (the suite names its table)."""
    return validate_suites(con_or_path, [suite_name], expectations_dir=expectations_dir,
                           partitions=partitions)[0]


def scope_suite(data: dict, partitions: Sequence[str] | None) -> tuple[dict, str | None]:
    """(suite, batch query) for validating only the rows of ``partitions``.

    A suite opts in with ``meta.partition_column``; its batch becomes the rows of those partitions
    and ``{ledger_partitions}`` in its unexpected-rows queries (the ledger reconciliations) becomes
    the same restriction on the ledger. Without partitions, or for a suite that does not opt in,
    the whole table is the batch (query None) and the token disappears. Pure, unit-tested."""
    data = copy.deepcopy(data)
    column = data["meta"].get("partition_column")
    scoped = bool(partitions) and column is not None
    in_list = ", ".join(sql_literal(str(p)) for p in sorted(set(partitions or [])))
    ledger_filter = f"and partition in ({in_list})" if scoped else ""
    for expectation in data["expectations"]:
        query = (expectation.get("kwargs") or {}).get("unexpected_rows_query")
        if query is not None:
            expectation["kwargs"]["unexpected_rows_query"] = query.replace("{ledger_partitions}", ledger_filter)
    if not scoped:
        return data, None
    return data, f"select * from {data['meta']['table']} where {quote_ident(column)} in ({in_list})"


def covers_every_partition(con: duckdb.DuckDBPyConnection, meta: dict, partitions: Sequence[str]) -> bool:
    """Whether ``partitions`` include every partition the suite's table holds (a backlog run over
    the whole range): then validating the whole table is the same check, without a long IN list
    in every GX query."""
    column = meta.get("partition_column")
    if column is None:
        return False
    present = {r[0] for r in con.execute(
        f"select distinct {quote_ident(column)} from {meta['table']}").fetchall()}
    return present <= set(partitions)


# Passing expectations are evaluated with BOOLEAN_ONLY: GX then bundles the column metrics of a
# table into one query. Samples of unexpected values cost one more scan per expectation (about
# a third of the suite's time on a 3M-row table), so only failed expectations are re-run for
# their counts and samples.
FAST_RESULT_FORMAT = {"result_format": "BOOLEAN_ONLY"}
DETAIL_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}


def validate_suites(con_or_path, suite_names: Sequence[str], *, expectations_dir: Path = EXPECTATIONS_DIR,
                    partitions: Sequence[str] | Mapping[str, Sequence[str]] | None = None) -> list[SuiteResult]:
    """Validate suites against their tables inside DuckDB (GX SQL mode), in one GX context on one
    connection (a context, its engine and the table reflection cost about 0.2 s per suite).

    ``partitions`` limits the suites that declare ``meta.partition_column`` to those partitions
    (an ingest run validates the days it loaded; see ``scope_suite``). A missing table or file is
    the suite's ``error``, never an exception."""
    started = time.perf_counter()
    path, read_only = _db_path_and_mode(con_or_path)
    prepared: list[tuple[SuiteResult, dict, str | None]] = []
    for suite_name in suite_names:
        data = load_suite_dict(suite_name, expectations_dir)
        meta = data["meta"]
        prepared.append((SuiteResult(suite_name=suite_name, table=meta["table"], layer=meta["layer"],
                                     asset_key=list(meta["asset_key"])), data, None))
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        inspect_con, own = con_or_path, False
    elif not path.exists():
        for result, _, _ in prepared:
            result.error = f"{path}: the DuckDB file does not exist"
        return [r for r, _, _ in prepared]
    else:
        inspect_con, own = connect_work_db(path, read_only=True), True
    try:
        for i, (result, data, _) in enumerate(prepared):
            if not _table_exists(inspect_con, result.table):
                result.error = f"table {result.table} does not exist in {path}"
                continue
            scope = partitions.get(result.suite_name) if isinstance(partitions, Mapping) else partitions
            if scope and covers_every_partition(inspect_con, data["meta"], scope):
                scope = None  # the run loaded every partition the table has: the batch is the table
            prepared[i] = (result, *scope_suite(expand_suite(data, inspect_con), scope))
    finally:
        if own:
            inspect_con.close()
    runnable = [(r, d, q) for r, d, q in prepared if r.error is None]
    if runnable:
        with gx_duckdb.duckdb_datasource(path, read_only=read_only) as (_, datasource):
            for result, data, query in runnable:
                suite_started = time.perf_counter()
                _validate_on(datasource, result, data, query)
                result.seconds = time.perf_counter() - suite_started
    if len(suite_names) == 1:  # a single suite also carries the context's setup time
        prepared[0][0].seconds = time.perf_counter() - started
    return [r for r, _, _ in prepared]


def _validate_on(datasource, result: SuiteResult, data: dict, query: str | None) -> None:
    import great_expectations as gx  # deferred: GX costs 2.5-4 s to import (gx_duckdb.warm_up_in_background)

    suite_name = result.suite_name
    if query is None:
        schema, table = result.table.split(".", 1)
        asset = datasource.add_table_asset(name=suite_name, table_name=table, schema_name=schema)
    else:
        asset = datasource.add_query_asset(name=suite_name, query=query)
    batch = asset.add_batch_definition_whole_table("whole_table").get_batch()

    def run(indices: list[int], result_format: dict) -> dict:
        expectations = []
        for index in indices:
            expectation = copy.deepcopy(data["expectations"][index])
            expectation.setdefault("meta", {})["suite_index"] = index
            expectations.append(expectation)
        suite = gx.ExpectationSuite(name=f"{suite_name}-{len(indices)}", expectations=expectations)
        validation = batch.validate(suite, result_format=result_format)
        # Match each result back to its JSON (severity, why) by the index we put in its meta.
        by_index = {int(r.expectation_config.meta["suite_index"]): r for r in validation.results}
        missing = [i for i in indices if i not in by_index]
        if missing:
            raise gx_duckdb.GXCompatibilityError(
                f"suite {suite_name}: GX returned no result for expectation #{missing[0]} "
                f"({data['expectations'][missing[0]]['type']})")
        return by_index

    everything = list(range(len(data["expectations"])))
    results = run(everything, FAST_RESULT_FORMAT)
    failed = [i for i in everything if not results[i].success]
    if failed:
        results.update(run(failed, DETAIL_RESULT_FORMAT))
    result.outcomes = [_outcome_from_gx(results[i], data["expectations"][i]) for i in everything]
    # Samples end up in Dagster events and the validation report: never a PII value
    # (meta.pii_columns of a raw suite; docs/ingest.md, "Messages").
    pii = set(data["meta"].get("pii_columns") or ())
    for outcome in result.outcomes:
        if outcome.column in pii:
            outcome.sample = ["(PII, not shown)"] * len(outcome.sample)
        elif pii:
            outcome.sample = [{k: "(PII, not shown)" if k in pii else v for k, v in s.items()}
                              if isinstance(s, dict) else s for s in outcome.sample]


def validate_all(settings: Settings, layer: str = "raw", *,
                 expectations_dir: Path = EXPECTATIONS_DIR) -> list[SuiteResult]:
    """Every suite of a layer against ``settings.work_db``."""
    if layer not in ("raw", "marts"):
        raise ValueError(f"layer must be 'raw' or 'marts', got {layer!r}")
    return validate_suites(settings.work_db, list_suites(layer, expectations_dir), expectations_dir=expectations_dir)


def write_validation_summary(results: list[SuiteResult], settings: Settings) -> Path:
    """The self-contained HTML (+ JSON) summary of ``results`` under ``reports/validation``."""
    return write_summary(results, settings.reports_dir / "validation")


def record_suite_results(results: Sequence[SuiteResult], settings: Settings) -> Path:
    """Keep the latest result of each suite and refresh ``latest.html`` over all suites' latest
    results, so checks running as separate Dagster steps still produce one summary page."""
    out_dir = settings.reports_dir / "validation"
    suites_dir = out_dir / "suites"
    suites_dir.mkdir(parents=True, exist_ok=True)
    for result in results:
        (suites_dir / f"{result.suite_name}.json").write_text(
            json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    latest = [SuiteResult.from_dict(json.loads(p.read_text(encoding="utf-8")))
              for p in sorted(suites_dir.glob("*.json"))]
    return write_summary(latest, out_dir, timestamped=False)
