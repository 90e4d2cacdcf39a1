"""Property-based test of every reader (hypothesis): random bytes, random line endings, random
quoting and random file names, fed to the ingest of each source. Whatever the input:

- no exception escapes (every problem is a ledger row or a quarantine row with a reason);
- for every loaded file, rows landed = rows loaded + rows quarantined, and raw and the quarantine
  table hold exactly those rows;
- no ledger message or quarantine reason quotes the planted name, phone or ID number;
- a name outside the contract is never read (an ``ignored`` ledger row, nothing in raw).

The number of examples is bounded (``EXAMPLES`` per source) so the suite stays fast; the run
count is printed at the end of the module (``-s``) and asserted.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dagster_project.lib.ingest import CONTRACTS
from dagster_project.lib.ingest.landing import discover, list_landing
from dagster_project.lib.ingest.loader import COMPLAINTS_HISTORY, connect, ingest_files, record_landing_entries

from tests.conftest import make_settings

EXAMPLES = 25
PLANTED = ("渗透测试乙", "13700002222", "110101199002021234")
TODAY = date(2024, 12, 31)
RUNS: dict[str, int] = {}

BASE = {
    "policies": {"policy_no": "PJL2024000001", "customer_id": "C000000001", "customer_name": PLANTED[0],
                 "id_card_no": PLANTED[2], "phone": PLANTED[1], "branch_code": "JL", "line_of_business": "MOTOR",
                 "business_source": "DIRECT", "sum_insured": "100000.00", "premium": "3500.50",
                 "vehicle_price": "150000.00", "issue_date": "{day}", "start_date": "{day}", "end_date": "2026-01-04",
                 "renewal_of": "", "status": "ACTIVE"},
    "claim_events": {"event_id": "E000000000001", "claim_no": "CLJL2024000001", "policy_no": "PJL2024000001",
                     "event_type": "REPORTED", "event_ts": "{day} 10:15:00", "amount": "5200.00", "surveyor_id": "",
                     "payment_method": "", "injury": "N", "location_type": "URBAN", "report_channel": "PHONE"},
    "call_logs": {"call_id": "CA000000000001", "direction": "呼入", "call_type": "报案", "queue": "CLAIM_REPORT",
                  "phone": PLANTED[1], "policy_no": "PJL2024000001", "claim_no": "", "agent_id": "A0012",
                  "branch_code": "JL", "offered_ts": "{slash} 09:00:00", "answered_ts": "{slash} 09:00:12",
                  "ended_ts": "{slash} 09:05:00", "abandoned": "否", "wrap_up_seconds": "30", "outcome": ""},
    "surveys": {"response_id": "R000000000001", "channel": "SMS", "sent_ts": "{day} 08:00:00",
                "responded_ts": "{day} 09:30:00", "policy_no": "PJL2024000001", "claim_no": "CLJL2024000001",
                "complaint_no": None, "stage": "REPORT", "score": 5, "nps": 9, "comment": f"电话{PLANTED[1]}",
                "agent_id": "A0012"},
    "complaints": {"complaint_no": "CPJL00000001", "received_ts": "{day} 10:15:00", "channel": "HOTLINE",
                   "branch_code": "JL", "policy_no": "PJL2024000001", "claim_no": None, "category": "CLAIM_DELAY",
                   "complainant": {"name": PLANTED[0], "phone": PLANTED[1]}, "is_accepted": True,
                   "is_duplicate": False, "is_withdrawn": False, "liability": "PENDING", "extension_level": 0,
                   "status": "OPEN", "closed_ts": None, "resolution": None, "updated_ts": "{day} 10:20:00",
                   "actions": []},
}


def _fill(value, day: date):
    if isinstance(value, str):
        return value.format(day=day.isoformat(), slash=day.strftime("%Y/%m/%d"))
    if isinstance(value, dict):
        return {k: _fill(v, day) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def workspace():
    with tempfile.TemporaryDirectory(prefix="cswh-prop-") as tmp:
        settings = make_settings(Path(tmp))
        settings.landing_dir.mkdir(parents=True)
        con = connect(settings)
        yield settings, con
        con.close()
    print(f"\nproperty test runs per source: {RUNS}")


mutation = st.one_of(
    st.binary(min_size=0, max_size=40),  # random bytes
    st.sampled_from([b'"', b'""', b"\r", b"\r\n", b"\n", b"\n\n", b",", b"\x00", b"\xff\xfe", b"{", b"}", b"[",
                     b'"score": 1, "score": 2', "２".encode(), b"0x1F", b"3.5", "\u2028".encode()]),
)
edits = st.lists(st.tuples(st.floats(min_value=0, max_value=1), mutation), min_size=0, max_size=6)
endings = st.sampled_from([b"\n", b"\r\n", b"\r", None])  # None: mixed
names = st.one_of(st.just(None), st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and "\x00" not in s))


def _render(source: str, day: date, n_rows: int) -> bytes:
    contract = CONTRACTS[source]
    rows = []
    for i in range(n_rows):
        row = _fill(BASE[source], day)
        key = contract.key[0]
        row[key] = row[key][:-3] + f"{i:03d}"
        rows.append(row)
    if source == "surveys":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if source == "complaints":
        return json.dumps(rows, ensure_ascii=False, indent=1).encode()
    columns = list(contract.column_names)
    header = columns
    if contract.header_map:
        header = [{v: k for k, v in contract.header_map.items()}[c] for c in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    text = out.getvalue()
    if source == "claim_events":
        text = "\ufeff" + text
    return text.encode("gbk" if contract.encoding == "gbk" else "utf-8")


def _mutate(data: bytes, changes, ending) -> bytes:
    for where, piece in changes:
        at = int(where * len(data))
        data = data[:at] + piece + data[at:]
    if ending is None:
        return data.replace(b"\n", b"\r\n", 2)
    return data.replace(b"\n", ending)


def _check(source: str, con, settings, day: date, name: str | None) -> None:
    contract = CONTRACTS[source]
    listing = list_landing(settings.landing_dir, [contract], today=TODAY)
    record_landing_entries(con, source, listing, "prop")
    files = [f for f in discover(settings.landing_dir, contract, listing=listing) if f.partition == day.isoformat()]
    with tempfile.TemporaryDirectory() as workdir:
        results = ingest_files(con, contract, files, "prop", Path(workdir))  # must not raise
    table = COMPLAINTS_HISTORY if source == "complaints" else contract.raw_table
    for r in results:
        assert r.status in ("loaded", "failed", "held_back", "skipped")
        if r.status == "loaded":
            assert r.rows_landed == r.rows_loaded + r.rows_quarantined
            in_raw = con.execute(f"SELECT count(*) FROM {table} WHERE _source_file = ?", [r.path]).fetchone()[0]
            in_q = con.execute(f"SELECT count(*) FROM {contract.quarantine_table} WHERE _source_file = ?",
                               [r.path]).fetchone()[0]
            assert (in_raw, in_q) == (r.rows_loaded, r.rows_quarantined)
        assert not any(p in (r.message or "") for p in PLANTED), r.message
    reasons = [x[0] for x in con.execute(f"SELECT reason FROM {contract.quarantine_table}").fetchall()]
    assert not [x for x in reasons if any(p in (x or "") for p in PLANTED)]
    messages = [x[0] for x in con.execute("SELECT message FROM raw._ingest_ledger WHERE message IS NOT NULL").fetchall()]
    assert not [x for x in messages if any(p in x for p in PLANTED)]
    if name is not None:
        assert not results or all(r.path != f"{contract.folder}/{name}" for r in results)


def _property(source: str):
    counter = {"day": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(n_rows=st.integers(min_value=0, max_value=6), changes=edits, ending=endings, name=names)
    def check(workspace, n_rows, changes, ending, name):
        settings_, con = workspace
        counter["day"] += 1
        day = date(2024, 1, 1) + timedelta(days=counter["day"] + 40 * list(BASE).index(source))
        contract = CONTRACTS[source]
        folder = settings_.landing_dir / contract.folder
        folder.mkdir(parents=True, exist_ok=True)
        data = _mutate(_render(source, day, n_rows), changes, ending)
        file_name = f"{day.isoformat()}{contract.file_suffix}"
        (folder / file_name).write_bytes(data)
        odd = None
        if name is not None and name not in (".", ".."):
            try:
                (folder / name).write_bytes(data)
                odd = name
            except OSError:
                odd = None
        try:
            _check(source, con, settings_, day, odd)
        finally:
            RUNS[source] = RUNS.get(source, 0) + 1
            for p in list(folder.iterdir()):
                if p.is_file() and not p.is_symlink():
                    p.unlink()

    return check


test_policies_reader = _property("policies")
test_claim_events_reader = _property("claim_events")
test_call_logs_reader = _property("call_logs")
test_surveys_reader = _property("surveys")
test_complaints_reader = _property("complaints")


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(min_size=0, max_size=400))
def test_audits_reader_random_bytes(workspace, data):
    settings_, con = workspace
    folder = settings_.landing_dir / "audits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2024-06.xlsx").write_bytes(data)
    try:
        contract = CONTRACTS["audits"]
        listing = list_landing(settings_.landing_dir, [contract], today=TODAY)
        with tempfile.TemporaryDirectory() as workdir:
            [result] = ingest_files(con, contract, discover(settings_.landing_dir, contract, listing=listing),
                                    "prop", Path(workdir))
        assert result.status in ("failed", "held_back", "loaded")
        assert result.status != "loaded" or result.rows_landed == result.rows_loaded + result.rows_quarantined
    finally:
        RUNS["audits"] = RUNS.get("audits", 0) + 1
        (folder / "2024-06.xlsx").unlink()


def test_the_property_tests_ran_their_examples():
    assert all(RUNS.get(s, 0) >= EXAMPLES for s in BASE), RUNS
    assert RUNS.get("audits", 0) >= 1
