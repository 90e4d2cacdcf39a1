"""Kill -9: a child process ingesting or publishing is SIGKILLed at random points; after
each kill the published file is the previous version or the complete new one (manifest run id and
row counts agree, read in one read-only connection), the work file opens (DuckDB replays or drops
its WAL), raw holds exactly the rows the ledger says were committed, and the next run completes
with no duplicate rows."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.loader import LEDGER_TABLE, WORKDIR_PREFIX, ingest_all_files
from dagster_project.lib.publish.publish import list_versions, publish

from tests.conftest import make_settings
from tests.publish.fake_warehouse import apply_sql, build_work_db
from tests.reliability.harness import INGEST_CODE, PUBLISH_CODE, kill, read_published, start, wait_for_line

KILL_DATA = {"scale": 0.02, "start": date(2024, 1, 1), "days": 45, "seed": 5, "complaints_per_10k": 300}


@pytest.fixture(scope="module")
def kill_landing(tmp_path_factory):
    from dagster_project.tools.sample_data.generator import generate

    landing = tmp_path_factory.mktemp("kill") / "landing"
    generate(landing, progress=False, **KILL_DATA)
    return landing


def assert_raw_matches_ledger(settings) -> dict[str, int]:
    """Per landing file: rows in raw (+ quarantine) = the ledger's committed counts; keys unique
    per file. Opens the work file read-write, as the next run would (WAL recovery)."""
    con = duckdb.connect(str(settings.work_db))
    try:
        totals = {}
        for source, contract in CONTRACTS.items():
            table = "raw.complaints_history" if source == "complaints" else contract.raw_table
            key = ", ".join(contract.key)
            dupes = con.execute(f"SELECT count(*) FROM (SELECT _source_file, {key} FROM {table} "
                                "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
            assert dupes == 0, f"{table}: duplicate keys within a file"
            mismatched = con.execute(f"""
                SELECT coalesce(l.path, r._source_file), l.rows_loaded, r.n FROM
                    (SELECT path, rows_loaded FROM {LEDGER_TABLE} WHERE source = ? AND status = 'loaded') l
                FULL JOIN (SELECT _source_file, count(*) AS n FROM {table} GROUP BY 1) r ON r._source_file = l.path
                WHERE l.rows_loaded IS DISTINCT FROM coalesce(r.n, 0)""", [source]).fetchall()
            assert not mismatched, f"{table}: raw rows and ledger disagree: {mismatched[:3]}"
            totals[source] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return totals
    finally:
        con.close()


def test_kill_during_ingest_then_the_next_run_completes(kill_landing, tmp_path):
    fresh = make_settings(tmp_path / "fresh", landing=kill_landing)
    ingest_all_files(fresh, run_id="fresh")
    expected = assert_raw_matches_ledger(fresh)
    rng = random.Random(20240101)
    sources = list(CONTRACTS)
    interrupted = 0
    for attempt in range(4):
        # Each kill in a warehouse of its own, so every attempt has work to interrupt.
        settings = make_settings(tmp_path / f"attempt{attempt}", landing=kill_landing)
        proc = start(INGEST_CODE.format(run_id=f"killed-{attempt}"), settings)
        # Kill while a random source loads: right after the progress line of the source before it.
        target = 1 + rng.randrange(len(sources) - 1)
        wait_for_line(proc, f"[ingest] {sources[target - 1]}:")
        time.sleep(rng.uniform(0.0, 0.1))
        was_running = kill(proc)
        interrupted += was_running
        # The killed child's scratch folder (it may hold normalised landing rows) outlives it ...
        scratch = list(Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}{proc.pid}-*"))
        assert scratch or not was_running
        if settings.work_db.exists():
            assert_raw_matches_ledger(settings)  # opens (WAL recovery) and is consistent
        summary = ingest_all_files(settings, run_id="after-kill")
        assert not summary.failed
        assert assert_raw_matches_ledger(settings) == expected  # complete, no duplicates
        assert not any(folder.exists() for folder in scratch)  # ... until the next ingest starts
    assert interrupted >= 3, "the kills should interrupt running ingests"


def test_kill_during_publish_leaves_the_previous_or_the_new_version(tmp_path):
    settings = make_settings(tmp_path)
    settings.warehouse_dir.mkdir(parents=True)
    build_work_db(settings.work_db)
    first = publish(settings, "run-first", {"checks": []}, [])
    expected = {"run-first": first.row_counts}
    current = "run-first"
    rng = random.Random(7)
    interrupted = 0
    for attempt in range(5):
        run_id = f"run-kill-{attempt}"
        # Each attempt changes the marts, so two versions never have the same row counts.
        apply_sql(settings.work_db, "INSERT INTO marts.mart_claim_cycle SELECT * FROM marts.mart_claim_cycle LIMIT 1")
        in_window = attempt % 2 == 0
        proc = start(PUBLISH_CODE.format(run_id=run_id), settings,
                     **({"CSWH_PUBLISH_PAUSE_SECONDS": "1.0"} if in_window else {}))
        if in_window:  # inside the window between a complete candidate and os.replace
            assert wait_for_line(proc, "[publish] ready to replace") is not None
            time.sleep(rng.uniform(0.0, 0.8))
        else:  # anywhere in write / audit / copy
            time.sleep(rng.uniform(0.5, 2.5))
        interrupted += kill(proc)
        run, manifest_counts, actual = read_published(settings.published_db)
        assert run in (current, run_id), f"published run {run} is neither {current} nor {run_id}"
        assert actual == manifest_counts  # never a mix of versions
        if run == run_id:
            current = run_id
        if in_window:
            assert run == current
    assert interrupted >= 3
    final = publish(settings, "run-final", {"checks": []}, [])
    run, manifest_counts, actual = read_published(settings.published_db)
    assert run == "run-final" and actual == manifest_counts == final.row_counts
    leftovers = list(settings.versions_dir.glob("*.partial*")) + list(settings.warehouse_dir.glob(".*.tmp"))
    assert leftovers == []
    assert len(list_versions(settings)) <= 5
    assert expected["run-first"]["mart_claim_cycle"] < final.row_counts["mart_claim_cycle"]
