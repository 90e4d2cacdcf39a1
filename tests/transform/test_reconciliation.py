"""The backlog identity of mart_complaints (previous month-end backlog + received - closed =
month-end backlog, per branch) is a dbt test that holds on the built data and fails the build
when a single count breaks it."""

from __future__ import annotations

import duckdb
import pytest

SELECT = ["test", "--select", "mart_complaints,test_name:balance_reconciles"]


def test_backlog_identity_holds_and_catches_a_broken_count(built_settings, copy_settings):
    from dagster_project.lib.transform.dbt_project import DbtBuildError, run_dbt

    settings = copy_settings(built_settings, with_landing=False)
    result = run_dbt(settings, SELECT)
    assert result["statuses"].get("pass") == 1, result["statuses"]

    con = duckdb.connect(str(settings.work_db))
    try:
        branch, month = con.execute("""select branch_code, month from marts.mart_complaints
            where received > 0 order by month, branch_code limit 1 offset 5""").fetchone()
        con.execute("update marts.mart_complaints set closed = closed + 1 where branch_code = ? and month = ?",
                    [branch, month])
    finally:
        con.close()
    with pytest.raises(DbtBuildError) as failure:
        run_dbt(settings, SELECT)
    assert "balance_reconciles" in str(failure.value)
