"""The bad-input catalogue: ``generate(..., defects=True)`` writes one file per defect
after a small clean data set; everything is ingested once, then each defect is its own test case
checking the outcome its manifest entry promises — and, for every loaded file, that rows landed =
loaded + quarantined and that every clean row of the file is in raw."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.tools.sample_data.defects import load_manifest, write_defects
from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.loader import ingest_all_files, unknown_references

from tests.conftest import make_settings

CLEAN = {"scale": 0.01, "start": date(2024, 1, 1), "days": 10, "seed": 11}
# The catalogue's customer name, ID number and phones (tools/sample_data/defects.py).
PLANTED_PII = ("缺陷样例", "22010119800101123X", "13812345678", "13912345678", "缺陷投诉人", "另一人")


def _catalogue_ids() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        return [d.id for d in write_defects(Path(tmp), date(2024, 1, 10))]


DEFECT_IDS = _catalogue_ids()


@pytest.fixture(scope="module")
def defects_loaded(tmp_path_factory):
    from dagster_project.tools.sample_data.generator import generate

    root = tmp_path_factory.mktemp("defects")
    settings = make_settings(root)
    summary = generate(settings.landing_dir, progress=False, defects=True, **CLEAN)
    assert summary["defects"] == len(DEFECT_IDS)
    ingest = ingest_all_files(settings, run_id="defects")
    con = duckdb.connect(str(settings.work_db), read_only=True)
    yield settings, ingest, {d.id: d for d in load_manifest(settings.landing_dir)}, con
    con.close()


def test_catalogue_covers_at_least_25_distinct_defects_of_all_six_sources(defects_loaded):
    _, _, manifest, _ = defects_loaded
    assert len(manifest) >= 25
    assert {d.source for d in manifest.values()} == set(CONTRACTS)
    assert len({d.file for d in manifest.values()}) == len(manifest)  # one file per defect
    outcomes = {d.outcome for d in manifest.values()}
    assert outcomes == {"loaded", "normalized", "flagged", "quarantined", "failed", "ignored"}
    assert len(manifest) >= 70  # the hostile-input classes (docs/ingest.md) are in the catalogue


def test_every_other_file_of_the_run_reconciles_and_nothing_unexpected_failed(defects_loaded):
    settings, ingest, manifest, con = defects_loaded
    failing = {d.file for d in manifest.values() if d.outcome == "failed"}
    assert {f.path for f in ingest.failed} == failing
    rows = con.execute("SELECT path, rows_landed, rows_loaded, rows_quarantined FROM raw._ingest_ledger "
                       "WHERE status = 'loaded'").fetchall()
    assert rows and all(landed == loaded + quarantined for _, landed, loaded, quarantined in rows)


def _raw_table(source: str) -> str:
    return "raw.complaints_history" if source == "complaints" else CONTRACTS[source].raw_table


@pytest.mark.parametrize("defect_id", DEFECT_IDS)
def test_defect_outcome(defects_loaded, defect_id):
    settings, ingest, manifest, con = defects_loaded
    d = manifest[defect_id]
    contract = CONTRACTS[d.source]
    if d.outcome == "ignored":
        assert d.file in ingest.ignored_files
        [(status, message, loaded)] = con.execute(
            "SELECT status, message, rows_loaded FROM raw._ingest_ledger WHERE path = ?", [d.file]).fetchall()
        assert status == "ignored" and d.message in message and loaded is None
        assert con.execute(f"SELECT count(*) FROM {_raw_table(d.source)} WHERE _source_file = ?",
                           [d.file]).fetchone()[0] == 0
        assert con.execute(f"SELECT count(*) FROM {contract.quarantine_table} WHERE _source_file = ?",
                           [d.file]).fetchone()[0] == 0
        return
    [(status, landed, loaded, quarantined, message)] = con.execute(
        "SELECT status, rows_landed, rows_loaded, rows_quarantined, message FROM raw._ingest_ledger WHERE path = ?",
        [d.file]).fetchall()
    if d.outcome == "failed":
        assert status == "failed"
        assert message.startswith(d.file + ": ") and d.message in message
        assert con.execute(f"SELECT count(*) FROM {_raw_table(d.source)} WHERE _source_file = ?",
                           [d.file]).fetchone()[0] == 0
        return
    assert status == "loaded"
    assert (landed, loaded, quarantined) == (d.rows_landed, d.rows_loaded, d.rows_quarantined)
    assert landed == loaded + quarantined
    got_quarantine = con.execute(
        f"SELECT _source_line, reason_code, reason FROM {contract.quarantine_table} WHERE _source_file = ? "
        "ORDER BY _source_line", [d.file]).fetchall()
    assert [(line, code) for line, code, _ in got_quarantine] == [(line, d.reason_code) for line in d.quarantined_lines]
    assert all(reason for _, _, reason in got_quarantine)  # every quarantined row says why
    key = contract.key[0]
    loaded_keys = {r[0] for r in con.execute(
        f"SELECT {key} FROM {_raw_table(d.source)} WHERE _source_file = ?", [d.file]).fetchall()}
    assert set(d.clean_keys) <= loaded_keys, "a clean row of a defect file was lost"
    assert len(loaded_keys) == loaded
    if d.outcome in ("normalized", "flagged"):
        assert message and d.note in message, f"ledger note {message!r} lacks {d.note!r}"
    if d.outcome == "loaded":
        assert message is None  # nothing was changed, so nothing is noted
    for _, _, reason in got_quarantine:  # a reason names line, column and rule, never a PII value
        assert not any(v in reason for v in PLANTED_PII), reason
    if d.outcome == "flagged":
        counts = unknown_references(con)
        column = "policy_no" if d.source == "claim_events" else "claim_no"
        assert sum(n for name, n in counts.items() if name.startswith(f"{d.source}.{column}")) >= 1


def test_no_ledger_message_or_quarantine_reason_quotes_planted_pii(defects_loaded):
    _, _, _, con = defects_loaded
    texts = [r[0] for r in con.execute("SELECT message FROM raw._ingest_ledger WHERE message IS NOT NULL").fetchall()]
    for contract in CONTRACTS.values():
        texts += [r[0] for r in con.execute(f"SELECT reason FROM {contract.quarantine_table}").fetchall()]
    assert texts and not [t for t in texts if any(v in t for v in PLANTED_PII)]
    passwd = Path("/etc/passwd").read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    raw_texts = [r[0] for c in CONTRACTS.values()
                 for r in con.execute(f"SELECT raw_text FROM {c.quarantine_table}").fetchall()]
    assert not [t for t in raw_texts if any(p and p in (t or "") for p in passwd)]  # the link was never read


def test_normalized_values_mean_what_the_source_meant(defects_loaded):
    """Repairs never change meaning: the full-width amount is 5200.00, the Chinese-style and
    other year-first dates are the file's own day, the joined comment keeps its line break."""
    _, _, manifest, con = defects_loaded
    claims = manifest["claims_full_width_digits"].file
    assert con.execute("SELECT amount, CAST(event_ts AS VARCHAR) FROM raw.claim_events WHERE _source_file = ? "
                       "AND _source_line = 2", [claims]).fetchone() == (5200, f"{Path(claims).stem} 10:15:00")
    thousands = manifest["claims_thousands_separators"].file
    assert con.execute("SELECT amount FROM raw.claim_events WHERE _source_file = ? AND _source_line = 2",
                       [thousands]).fetchone()[0] == Decimal("12345.60")
    mixed = manifest["policies_mixed_date_formats"].file
    day = date.fromisoformat(Path(mixed).stem)
    assert {r[0] for r in con.execute("SELECT start_date FROM raw.policies WHERE _source_file = ?",
                                      [mixed]).fetchall()} == {day}
    comment = manifest["surveys_raw_newline_in_comment"].file
    assert con.execute("SELECT comment FROM raw.surveys WHERE _source_file = ? AND _source_line = 2",
                       [comment]).fetchone()[0] == "第一行\n第二行"


def test_reingesting_the_catalogue_adds_nothing(defects_loaded, copy_settings):
    settings, _, _, _ = defects_loaded
    copy = copy_settings(settings, with_landing=False)  # the same landing folder (its links stay links)
    before = _table_counts(copy)
    again = ingest_all_files(copy, run_id="again")
    assert again.rows_loaded == 0 and all(f.status in ("skipped", "failed") for f in again.files)
    assert _table_counts(copy) == before


def _table_counts(settings) -> dict[str, int]:
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'raw' ORDER BY 1").fetchall()]
        return {n: con.execute(f"SELECT count(*) FROM raw.{n}").fetchone()[0] for n in names}
