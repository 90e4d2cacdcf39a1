"""What every analysis shares: how its table is written into the work file, how it opens the work
file, and the one registry of analyses that the Dagster assets and the benchmark's floor both read
(so a new analysis is added in one place, and the floor computes exactly what the pipeline does)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pandas as pd

from dagster_project.lib.sql import sql_literal

OUTPUT_SCHEMA = "marts"

# (column, DuckDB type, description): the published table's contract and its column comments.
Column = tuple[str, str, str]


def write_table(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, columns: tuple[Column, ...],
                description: str) -> int:
    """Replace ``marts.<table>`` with ``frame``, typed as ``columns`` says, with the table's and every
    column's comment (publish copies the comments to the published file)."""
    view = f"_{table}_rows"
    con.register(view, frame)
    try:
        select = ", ".join(f'cast("{name}" as {dtype}) as "{name}"' for name, dtype, _ in columns)
        con.execute(f"create schema if not exists {OUTPUT_SCHEMA}")
        con.execute(f"create or replace table {OUTPUT_SCHEMA}.{table} as select {select} from {view}")
    finally:
        con.unregister(view)
    con.execute(f"comment on table {OUTPUT_SCHEMA}.{table} is {sql_literal(description)}")
    for name, _, text in columns:
        con.execute(f'comment on column {OUTPUT_SCHEMA}.{table}."{name}" is {sql_literal(text)}')
    return len(frame)


@contextmanager
def work_connection(work_db: Path, memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(work_db))
    try:
        if memory_limit:
            con.execute(f"set memory_limit = {sql_literal(memory_limit)}")
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class Analysis:
    """One analysis: the dbt model it reads, the mart it writes, and ``build(con, scratch_dir)``,
    which computes and writes the mart on ``con`` and returns the materialization's counts
    (``rows`` first)."""

    table: str
    input_model: str  # "<schema>.<model>" of the dbt model it reads
    description: str
    build: Callable[[duckdb.DuckDBPyConnection, Path | None], dict[str, int]]

    def run(self, work_db: Path, memory_limit: str | None = None, scratch_dir: Path | None = None) -> dict[str, int]:
        with work_connection(work_db, memory_limit) as con:
            return self.build(con, scratch_dir)
