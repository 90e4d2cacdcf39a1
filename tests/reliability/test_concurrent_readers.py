"""Concurrent readers: reader processes open ``published.duckdb`` read-only in a loop
(manifest run id + the row counts of two marts in ONE connection, compared with that version's
manifest) while the test process publishes six new versions; no reader error, no mixed version,
and no publish fails with a lock error while readers hold the file open."""

from __future__ import annotations

import multiprocessing as mp
import time

from dagster_project.lib.publish.publish import publish

from tests.conftest import make_settings
from tests.publish.fake_warehouse import apply_sql, build_work_db

TABLES = ("mart_claim_cycle", "mart_stage_satisfaction")
PUBLISHES = 6


def reader(path: str, stop, results) -> None:
    import duckdb

    reads, errors, mixed, runs = 0, [], 0, set()
    while not stop.is_set():
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                run_id, counts = con.execute("SELECT run_id, row_counts FROM meta.publish_manifest").fetchone()
                import json

                counts = json.loads(counts)
                actual = {t: con.execute(f"SELECT count(*) FROM marts.{t}").fetchone()[0] for t in TABLES}
            finally:
                con.close()
            reads += 1
            runs.add(run_id)
            if actual != {t: counts[t] for t in TABLES}:
                mixed += 1
        except Exception as exc:  # any error is a failure of the guarantee
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put((reads, errors, mixed, sorted(runs)))


def test_readers_never_see_an_error_or_a_mix_while_versions_are_published(tmp_path):
    settings = make_settings(tmp_path)
    settings.warehouse_dir.mkdir(parents=True)
    build_work_db(settings.work_db)
    publish(settings, "run-0", {"checks": []}, [])
    ctx = mp.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=reader, args=(str(settings.published_db), stop, results)) for _ in range(3)]
    for p in readers:
        p.start()
    time.sleep(1.5)  # readers running (spawned interpreters import duckdb first)
    published = []
    for n in range(1, PUBLISHES + 1):
        # Different content per version, so a mix of two versions would show in the counts.
        apply_sql(settings.work_db, "INSERT INTO marts.mart_claim_cycle SELECT * FROM marts.mart_claim_cycle LIMIT 1")
        published.append(publish(settings, f"run-{n}", {"checks": []}, []).version_id)  # never a lock error
        time.sleep(0.2)
    stop.set()
    outcomes = [results.get(timeout=30) for _ in readers]
    for p in readers:
        p.join(timeout=10)
    assert len(published) == PUBLISHES
    total_reads = sum(r[0] for r in outcomes)
    errors = [e for r in outcomes for e in r[1]]
    assert errors == [], errors[:3]
    assert sum(r[2] for r in outcomes) == 0, "a reader saw row counts of two versions"
    seen = set().union(*(set(r[3]) for r in outcomes))
    assert total_reads > 3 * PUBLISHES and len(seen) >= 3, (total_reads, seen)
