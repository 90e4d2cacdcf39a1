"""Run a mart's compiled SQL (the SQL dbt built it with) on tables a test makes, in memory.

The compiled SQL names its inputs as "work"."<schema>"."<table>"; ``run_compiled`` attaches an
in-memory database called work, creates the inputs there from DataFrames and runs the query, so a
test can feed a model thousands of simulated grids without a dbt build per grid."""

from __future__ import annotations


import duckdb
import pandas as pd

from dagster_project.lib.transform.dbt_project import dbt_target_dir


def compiled_sql(settings, model: str) -> str:
    found = sorted((dbt_target_dir(settings) / "compiled").rglob(f"{model}.sql"))
    if not found:
        raise FileNotFoundError(f"no compiled SQL of {model} under {dbt_target_dir(settings)}")
    return found[0].read_text(encoding="utf-8")


def run_compiled(sql: str, inputs: dict[str, pd.DataFrame], con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """``inputs``: "schema.table" -> rows. Returns the query's result."""
    con = con or duckdb.connect()
    con.execute("attach if not exists ':memory:' as work")
    for name, frame in inputs.items():
        schema, table = name.split(".")
        con.execute(f"create schema if not exists work.{schema}")
        con.register("_input", frame)
        con.execute(f"create or replace table work.{schema}.{table} as select * from _input")
        con.unregister("_input")
    return con.execute(sql).df()
