"""The landing boundary (docs/ingest.md): nothing outside the landing folder is read, names match
the contract in ASCII exactly, dates lie in the partitions' range, every other entry is an
``ignored`` ledger row with its reason, and a loaded file that disappears is ``deleted``."""

from __future__ import annotations

import os
from datetime import date

import duckdb
import pytest
from ingest_helpers import policy_row, write_policies, write_surveys, survey_row

from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.guard import FileChanged, opened_for_reading
from dagster_project.lib.ingest.landing import discover, list_landing
from dagster_project.lib.ingest.loader import ingest_all_files, landing_exceptions

DAY = "2024-01-05"
TODAY = date(2024, 3, 1)
SECRET = "秘密甲,110101199001011234,13700001111"


def ledger(settings):
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        return {path: (status, message) for path, status, message in con.execute(
            "SELECT path, status, message FROM raw._ingest_ledger").fetchall()}


def test_a_symlink_to_a_file_outside_is_never_read(hand_settings, tmp_path):
    secret = tmp_path / "outside.csv"
    write_policies(tmp_path, "x", [policy_row(1, customer_name="秘密甲")])
    (tmp_path / "policies" / "x.csv").rename(secret)
    folder = hand_settings.landing_dir / "policies"
    folder.mkdir(parents=True)
    (folder / f"{DAY}.csv").symlink_to(secret)
    summary = ingest_all_files(hand_settings, run_id="links", today=TODAY)
    assert summary.files == [] and summary.ignored_files == [f"policies/{DAY}.csv"]
    status, message = ledger(hand_settings)[f"policies/{DAY}.csv"]
    assert status == "ignored" and "symbolic link" in message
    with duckdb.connect(str(hand_settings.work_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.quarantine_policies").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM raw.policies").fetchone() == (0,)


def test_a_source_folder_that_is_a_link_is_refused_whole(hand_settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_surveys(elsewhere, DAY, [survey_row(1)])
    (hand_settings.landing_dir / "surveys").symlink_to(elsewhere / "surveys")
    listing = list_landing(hand_settings.landing_dir, today=TODAY)
    assert listing.accepted == []
    [entry] = listing.ignored
    assert (entry.source, entry.rel_path) == ("surveys", "surveys") and "symbolic link" in entry.reason


@pytest.mark.parametrize("name, reason", [
    ("２０２４-01-05.csv", "non-ASCII digits"),
    ("2024-０1-05.csv", "non-ASCII digits"),
    ("2024-01-05.CSV", "suffix in the wrong case"),
    ("2024-01-05.csv.part", "name does not fit"),
    (" 2024-01-05.csv", "name does not fit"),
    ("2024-02-30.csv", "no such date"),
    ("2023-12-31.csv", "before the first partition"),
    ("2024-03-03.csv", "in the future"),
    ("2031-01-01.csv", "in the future"),
])
def test_names_and_dates_outside_the_contract_are_ignored_with_their_reason(hand_settings, name, reason):
    folder = hand_settings.landing_dir / "policies"
    folder.mkdir(parents=True)
    (folder / name).write_text("policy_no\n", encoding="utf-8")
    listing = list_landing(hand_settings.landing_dir, today=TODAY)
    assert listing.accepted == []
    [entry] = listing.ignored
    assert entry.source == "policies" and reason in entry.reason


def test_tomorrow_is_within_the_tolerance_and_today_plus_two_is_not(hand_settings):
    for day in ("2024-03-02", "2024-03-03"):
        write_policies(hand_settings.landing_dir, day, [policy_row(1, day)])
    listing = list_landing(hand_settings.landing_dir, today=TODAY)
    assert [e.partition for e in listing.accepted] == ["2024-03-02"]
    assert [e.partition for e in listing.ignored] == ["2024-03-03"]


def test_a_fifo_a_folder_and_an_undecodable_name_are_ignored_without_being_opened(hand_settings):
    folder = hand_settings.landing_dir / "policies"
    folder.mkdir(parents=True)
    os.mkfifo(folder / f"{DAY}.csv")  # opening it would block a reader forever
    (folder / "2024-01-06.csv").mkdir()
    (folder / os.fsdecode(b"2024-01-07\xff\n.csv")).write_text("x")
    (hand_settings.landing_dir / "stray.txt").write_text("x")
    summary = ingest_all_files(hand_settings, run_id="odd", today=TODAY)
    reasons = {e.rel_path: e.reason for e in summary.ignored}
    assert "FIFO" in reasons[f"policies/{DAY}.csv"] and "folder" in reasons["policies/2024-01-06.csv"]
    assert reasons["policies/2024-01-07\\xff\\n.csv"].startswith("name does not fit")  # escaped, printable
    assert reasons["stray.txt"] == "not a source folder of the landing contract"
    assert set(ledger(hand_settings)) == set(reasons)


def test_a_file_swapped_for_a_link_after_the_listing_is_not_read(hand_settings, tmp_path):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(1)])
    [found] = discover(hand_settings.landing_dir, CONTRACTS["policies"],
                       listing=list_landing(hand_settings.landing_dir, today=TODAY))
    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET, encoding="utf-8")
    path.unlink()
    path.symlink_to(secret)
    changed = []
    with opened_for_reading([found], lambda f, reason: changed.append(reason)) as ready:
        assert ready == []
    assert changed and "symbolic link" in changed[0]


def test_a_file_rewritten_during_the_read_is_not_loaded(hand_settings):
    path = write_policies(hand_settings.landing_dir, DAY, [policy_row(1)])
    [found] = discover(hand_settings.landing_dir, CONTRACTS["policies"],
                       listing=list_landing(hand_settings.landing_dir, today=TODAY))
    changed = []
    with opened_for_reading([found], lambda f, reason: changed.append(reason)) as ready:
        [opened] = ready
        assert str(opened.path).startswith("/proc/self/fd/")
        with open(path, "a", encoding="utf-8") as fh:  # the source system appends meanwhile
            fh.write("PJL2024999999\n")
    assert changed == ["it changed while it was being read; it is read again by the next run"]


def test_sha256_refuses_a_link(hand_settings, tmp_path):
    from dagster_project.lib.ingest.landing import sha256_of

    target = tmp_path / "t.csv"
    target.write_text("x")
    link = tmp_path / "l.csv"
    link.symlink_to(target)
    with pytest.raises(FileChanged):
        sha256_of(link)


def test_a_deleted_file_is_recorded_and_its_rows_are_kept(hand_settings):
    first = write_policies(hand_settings.landing_dir, DAY, [policy_row(1), policy_row(2)])
    write_policies(hand_settings.landing_dir, "2024-01-06", [policy_row(3, "2024-01-06")])
    ingest_all_files(hand_settings, run_id="one", sources=["policies"], today=TODAY)
    first.unlink()
    ingest_all_files(hand_settings, run_id="two", sources=["policies"], today=TODAY)
    status, message = ledger(hand_settings)[f"policies/{DAY}.csv"]
    assert status == "deleted" and "its 2 row(s) stay in raw and in the marts" in message
    with duckdb.connect(str(hand_settings.work_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.policies").fetchone() == (3,)
        assert con.execute("SELECT rows_loaded FROM raw._ingest_ledger WHERE status = 'deleted'").fetchone() == (2,)
    assert [(e["status"], e["path"]) for e in landing_exceptions(hand_settings.work_db)] == [
        ("deleted", f"policies/{DAY}.csv")]
    # Put back, it loads again and the deleted row is gone.
    write_policies(hand_settings.landing_dir, DAY, [policy_row(1), policy_row(2)])
    ingest_all_files(hand_settings, run_id="three", sources=["policies"], today=TODAY)
    assert ledger(hand_settings)[f"policies/{DAY}.csv"][0] == "loaded"
    assert landing_exceptions(hand_settings.work_db) == []


def test_an_ignored_entry_that_is_fixed_leaves_the_ledger(hand_settings):
    folder = hand_settings.landing_dir / "policies"
    bad = write_policies(hand_settings.landing_dir, DAY, [policy_row(1)])
    bad.rename(folder / f"{DAY}.CSV")
    ingest_all_files(hand_settings, run_id="one", sources=["policies"], today=TODAY)
    assert ledger(hand_settings) == {f"policies/{DAY}.CSV": ("ignored", ledger(hand_settings)[f"policies/{DAY}.CSV"][1])}
    (folder / f"{DAY}.CSV").rename(folder / f"{DAY}.csv")
    ingest_all_files(hand_settings, run_id="two", sources=["policies"], today=TODAY)
    assert {p: s for p, (s, _) in ledger(hand_settings).items()} == {f"policies/{DAY}.csv": "loaded"}
