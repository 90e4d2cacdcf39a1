"""Every landing file decodes in its stated encoding, with the stated headers, and every field
matches its contract (patterns, code lists, ranges, timestamp formats)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from dagster_project.tools.sample_data.generator import generate, print_summary
from dagster_project.lib.ingest import audits, call_logs, claim_events, complaints, policies, surveys
from dagster_project.lib.ingest.contract import CALL_TS_FORMAT, DATE_FORMAT, TS_FORMAT

START = date(2024, 1, 20)  # crosses two month ends: three audit workbooks, the last partial
DAYS = 45
CONTRACTS = (policies.CONTRACT, claim_events.CONTRACT, call_logs.CONTRACT, surveys.CONTRACT,
             complaints.CONTRACT, audits.CONTRACT)
TS_COLUMNS = {"event_ts", "sent_ts", "responded_ts", "received_ts", "closed_ts", "updated_ts"}
CALL_TS_COLUMNS = {"offered_ts", "answered_ts", "ended_ts"}
DATE_COLUMNS = {"issue_date", "start_date", "end_date"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_formats") / "landing"
    summary = generate(out, scale=0.05, start=START, days=DAYS, seed=11, progress=False)
    return out, summary


def _check_value(contract, name: str, value, where: str) -> None:
    col = contract.column(name)
    if value is None or value == "":
        assert not col.required, f"{where}: required column {name} is empty"
        return
    text = str(value)
    if col.codes is not None:
        assert text in col.codes, f"{where}: {name}={text!r} not in {col.codes}"
    if col.pattern is not None:
        assert re.match(col.pattern, text), f"{where}: {name}={text!r} does not match {col.pattern}"
    if name in TS_COLUMNS:
        datetime.strptime(text, TS_FORMAT)
    if name in CALL_TS_COLUMNS:
        datetime.strptime(text, CALL_TS_FORMAT)
    if name in DATE_COLUMNS:
        datetime.strptime(text, DATE_FORMAT)
    if col.type.startswith(("DECIMAL", "INTEGER")):
        number = float(text)
        if col.type.startswith("DECIMAL") and isinstance(value, str):
            assert re.fullmatch(r"-?\d+(\.\d{1,2})?", text), f"{where}: {name}={text!r} is not an amount"
        if col.type == "INTEGER":
            assert float(number).is_integer(), f"{where}: {name}={text!r} is not an integer"
        if col.min_value is not None:
            assert number >= col.min_value, f"{where}: {name}={number} below {col.min_value}"
        if col.max_value is not None:
            assert number <= col.max_value, f"{where}: {name}={number} above {col.max_value}"
    if col.type == "BOOLEAN":
        assert isinstance(value, bool), f"{where}: {name}={value!r} is not a JSON boolean"


def test_one_file_per_day_and_month(landing):
    out, summary = landing
    days = [date.fromordinal(START.toordinal() + i).isoformat() for i in range(DAYS)]
    for contract in CONTRACTS[:-1]:
        names = sorted(p.name for p in (out / contract.folder).iterdir())
        assert names == [f"{d}{contract.file_suffix}" for d in days], contract.source
        assert summary["files"][contract.source] == DAYS
    assert sorted(p.name for p in (out / "audits").iterdir()) == ["2024-01.xlsx", "2024-02.xlsx", "2024-03.xlsx"]
    truth = json.loads((out / "_truth.json").read_text(encoding="utf-8"))
    assert set(truth) == {"seed", "scale", "start", "end", "slow_survey_branch", "long_complaint_branch",
                          "winback_fast_vs_slow", "high_risk_cluster", "effects", "complaints_per_10k_policy_years",
                          "regulator_routed_share", "neglected_followup_branch", "repeat_call_queue",
                          "planted_effects", "planted_topic", "planted_key_driver"}
    # every planted effect states its size
    effects = truth["effects"]
    assert set(effects) == {"slow_survey", "long_complaint", "winback", "high_risk_cluster", "neglected_followup",
                            "repeat_calls", "followup_recovery", "escalation"}
    assert effects["neglected_followup"]["in_time_probability"] < effects["neglected_followup"]["company_in_time_probability"]
    assert truth["neglected_followup_branch"] == effects["neglected_followup"]["branch"] == "HL"
    assert truth["repeat_call_queue"] == effects["repeat_calls"]["queue"] == "INQUIRY"
    recovery = effects["followup_recovery"]
    assert recovery["followed_renewal_rate"] > recovery["not_followed_renewal_rate"]
    assert recovery["followed_next_satisfied_logit_shift"] > 0 > recovery["not_followed_next_satisfied_logit_shift"]
    assert effects["slow_survey"]["survey_stage_satisfied_share"] < effects["slow_survey"]["company_survey_stage_target"]
    assert effects["long_complaint"]["handling_days_median"] > effects["long_complaint"]["company_handling_days_median"]
    assert effects["winback"]["fast_minus_slow"] == pytest.approx(
        effects["winback"]["fast_renewal_rate"] - effects["winback"]["slow_renewal_rate"])
    assert effects["high_risk_cluster"]["claim_frequency_multiplier"] > 1
    assert truth["start"] == "2024-01-20" and truth["end"] == "2024-03-04"
    assert truth["slow_survey_branch"] == "JL" and truth["long_complaint_branch"] == "LN"
    assert {"fast_days", "slow_days", "fast_renewal_rate", "slow_renewal_rate"} <= set(truth["winback_fast_vs_slow"])
    assert truth["high_risk_cluster"]["claim_frequency_multiplier"] > 1


@pytest.mark.parametrize("contract", CONTRACTS[:3], ids=lambda c: c.source)
def test_csv_encoding_headers_and_fields(landing, contract):
    out, summary = landing
    expected_header = list(contract.column_names)
    if contract.header_map:
        expected_header = [zh for zh, en in sorted(contract.header_map.items(),
                                                   key=lambda kv: contract.column_names.index(kv[1]))]
    total = 0
    for path in sorted((out / contract.folder).glob("*.csv")):
        raw = path.read_bytes()
        has_bom = raw.startswith(b"\xef\xbb\xbf")
        assert has_bom == (contract.encoding == "utf-8-sig"), f"{path.name}: BOM present={has_bom}"
        text = raw.decode(contract.encoding)  # strict: raises on a wrong byte
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == expected_header, f"{path.name}: header {rows[0]}"
        keys = Counter()
        for i, row in enumerate(rows[1:], start=1):
            assert len(row) == len(expected_header), f"{path.name} line {i}: {len(row)} fields"
            record = dict(zip(contract.column_names, row))
            for name, value in record.items():
                _check_value(contract, name, value, f"{path.name} line {i}")
            keys[tuple(record[k] for k in contract.key)] += 1
        assert not [k for k, n in keys.items() if n > 1], f"{path.name}: repeated keys"
        total += len(rows) - 1
    assert total == summary["rows"][contract.source] and total > 100


def test_call_log_is_gbk_not_utf8(landing):
    out, _ = landing
    raw = next(iter(sorted((out / "calls").glob("*.csv")))).read_bytes()
    assert raw.startswith("呼叫编号,呼叫方向".encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_surveys_jsonl(landing):
    out, summary = landing
    contract = surveys.CONTRACT
    n = 0
    for path in sorted((out / "surveys").glob("*.jsonl")):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        for i, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            rec = json.loads(line)
            assert list(rec) == list(contract.column_names), f"{path.name} line {i}"
            for name, value in rec.items():
                _check_value(contract, name, value, f"{path.name} line {i}")
            assert rec["responded_ts"] >= rec["sent_ts"]
            if rec["stage"] == "COMPLAINT":
                assert rec["complaint_no"] is not None
            else:
                assert rec["claim_no"] is not None and rec["complaint_no"] is None
            assert rec["responded_ts"][:10] == path.stem  # a file holds the day's responses
            n += 1
    assert n == summary["rows"]["surveys"] and n > 100


def test_complaints_json_array(landing):
    out, summary = landing
    contract = complaints.CONTRACT
    flat = [c for c in contract.column_names if not c.startswith("complainant_")]
    n = 0
    for path in sorted((out / "complaints").glob("*.json")):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        elements = json.loads(raw.decode("utf-8"))
        assert isinstance(elements, list)
        assert len({e["complaint_no"] for e in elements}) == len(elements), f"{path.name}: a ticket twice"
        for i, el in enumerate(elements, start=1):
            assert set(el) == set(flat) | {"complainant"}, f"{path.name} element {i}"
            assert set(el["complainant"]) == {"name", "phone"}
            for name in flat:
                if name != "actions":
                    _check_value(contract, name, el[name], f"{path.name} element {i}")
            _check_value(contract, "complainant_phone", el["complainant"]["phone"], path.name)
            assert el["updated_ts"][:10] == path.stem
            assert el["actions"] and el["actions"][-1]["ts"] == el["updated_ts"]
            assert all(a["action"] in complaints.ACTIONS for a in el["actions"])
            assert (el["status"] == "CLOSED") == (el["closed_ts"] is not None)
            n += 1
    assert n == summary["rows"]["complaints"]


def test_audit_workbooks(landing):
    out, summary = landing
    contract = audits.CONTRACT
    n = 0
    for path in sorted((out / "audits").glob("*.xlsx")):
        ws = load_workbook(path, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        assert "模拟赔案" in rows[0][0] and path.stem.replace("-", "年") in rows[0][0]
        assert list(rows[1]) == list(contract.column_names)
        for i, row in enumerate(rows[2:], start=3):
            rec = dict(zip(contract.column_names, row))
            assert isinstance(rec["audit_date"], datetime) and rec["audit_date"].strftime("%Y-%m") == path.stem
            for name, value in rec.items():
                if name != "audit_date":
                    _check_value(contract, name, value, f"{path.name} row {i}")
            n += 1
    assert n == summary["rows"]["audits"] and n > 20


def test_references_between_sources(landing):
    """Claims point at issued policies; renewals at earlier policies; CANCELLED rows repeat one."""
    out, _ = landing
    first_seen: dict[str, str] = {}
    renewal_of, cancelled = [], []
    for path in sorted((out / "policies").glob("*.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            first_seen.setdefault(row["policy_no"], path.stem)
            if row["renewal_of"]:
                renewal_of.append(row["renewal_of"])
            if row["status"] == "CANCELLED":
                cancelled.append((row["policy_no"], path.stem))
            assert row["start_date"] >= row["issue_date"] and row["end_date"] > row["start_date"]
            assert (row["vehicle_price"] != "") == (row["line_of_business"] == "MOTOR")
    assert renewal_of and all(r in first_seen for r in renewal_of)
    assert cancelled and all(first_seen[p] < day for p, day in cancelled)
    claim_policies = set()
    for path in sorted((out / "claims").glob("*.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
            claim_policies.add(row["policy_no"])
    assert claim_policies and claim_policies <= set(first_seen)


def test_print_summary(landing, capsys):
    _, summary = landing
    print_summary(summary)
    text = capsys.readouterr().out
    for source in ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits"):
        assert source in text
    assert f"{summary['rows']['claim_events']:,}" in text
