"""Hand-written landing files for the ingest tests (helpers; fixtures in conftest.py): small, valid by default, easy to break.

Each ``write_<source>`` helper writes one file exactly as the source system exports it (encoding,
BOM, Chinese headers, title row) and returns its path; ``rows`` are dicts in contract names, so a
test can change one value and know exactly which reason code to expect.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

from dagster_project.lib.ingest import call_logs
from dagster_project.lib.ingest.contract import CALL_TS_FORMAT

from dagster_project.settings import Settings


def policy_row(n: int = 1, day: str = "2024-01-05", **changes) -> dict:
    row = {
        "policy_no": f"PJL2024{n:06d}", "customer_id": f"C{n:09d}", "customer_name": "张三",
        "id_card_no": "22010119800101123X", "phone": "13812345678", "branch_code": "JL",
        "line_of_business": "MOTOR", "business_source": "DIRECT", "sum_insured": "100000.00",
        "premium": "3500.50", "vehicle_price": "150000.00", "issue_date": day, "start_date": day,
        "end_date": "2025-01-04", "renewal_of": "", "status": "ACTIVE",
    }
    row.update(changes)
    return row


def claim_row(n: int = 1, day: str = "2024-01-05", **changes) -> dict:
    row = {
        "event_id": f"E{n:012d}", "claim_no": "CLJL2024000001", "policy_no": "PJL2024000001",
        "event_type": "REPORTED", "event_ts": f"{day} 10:15:00", "amount": "5200.00", "surveyor_id": "",
        "payment_method": "", "injury": "N", "location_type": "URBAN", "report_channel": "PHONE",
    }
    row.update(changes)
    return row


def call_row(n: int = 1, day: str = "2024-01-05", **changes) -> dict:
    d = datetime.fromisoformat(day)
    row = {
        "call_id": f"CA{n:012d}", "direction": "呼入", "call_type": "报案", "queue": "CLAIM_REPORT",
        "phone": "13912345678", "policy_no": "PJL2024000001", "claim_no": "", "agent_id": "A0012",
        "branch_code": "JL", "offered_ts": d.replace(hour=9).strftime(CALL_TS_FORMAT),
        "answered_ts": d.replace(hour=9, second=12).strftime(CALL_TS_FORMAT),
        "ended_ts": d.replace(hour=9, minute=5).strftime(CALL_TS_FORMAT), "abandoned": "否",
        "wrap_up_seconds": "30", "outcome": "",
    }
    row.update(changes)
    return row


def survey_row(n: int = 1, day: str = "2024-01-05", **changes) -> dict:
    row = {
        "response_id": f"R{n:012d}", "channel": "SMS", "sent_ts": f"{day} 08:00:00",
        "responded_ts": f"{day} 09:30:00", "policy_no": "PJL2024000001", "claim_no": "CLJL2024000001",
        "complaint_no": None, "stage": "REPORT", "score": 5, "nps": 9, "comment": "报案很快，满意",
        "agent_id": "A0012",
    }
    row.update(changes)
    return row


def complaint_row(n: int = 1, day: str = "2024-01-05", updated: str | None = None, **changes) -> dict:
    row = {
        "complaint_no": f"CPJL{n:08d}", "received_ts": f"{day} 10:15:00", "channel": "HOTLINE",
        "branch_code": "JL", "policy_no": "PJL2024000001", "claim_no": None, "category": "CLAIM_DELAY",
        "complainant": {"name": "李四", "phone": "13812345678"}, "is_accepted": True,
        "is_duplicate": False, "is_withdrawn": False, "liability": "PENDING", "extension_level": 0,
        "status": "OPEN", "closed_ts": None, "resolution": None,
        "updated_ts": updated or f"{day} 10:20:00",
        "actions": [{"ts": f"{day} 10:20:00", "action": "ACCEPTED", "handler_id": "H0012"}],
    }
    row.update(changes)
    return row


def audit_row(n: int = 1, day: date = date(2024, 1, 10), **changes) -> dict:
    row = {
        "audit_id": f"AU{n:08d}", "audit_date": day, "branch_code": "JL", "auditor_id": "Q001",
        "scenario": "SIMULATED_CLAIM", "surveyor_arrival_minutes": 45, "sla_minutes": 60,
        "assessment_score": 88.5, "payment_convenience_score": 92, "passed": "Y", "findings": "到场及时",
    }
    row.update(changes)
    return row


def csv_text(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") if row.get(c) is not None else "" for c in columns])
    return out.getvalue()


def write_policies(landing: Path, day: str, rows: list[dict]) -> Path:
    from dagster_project.lib.ingest.policies import CONTRACT

    path = landing / "policies" / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(list(CONTRACT.column_names), rows), encoding="utf-8")
    return path


def write_claims(landing: Path, day: str, rows: list[dict]) -> Path:
    from dagster_project.lib.ingest.claim_events import CONTRACT

    path = landing / "claims" / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(list(CONTRACT.column_names), rows), encoding="utf-8-sig")
    return path


CHINESE_HEADER = {v: k for k, v in call_logs.HEADER_MAP.items()}


def write_calls(landing: Path, day: str, rows: list[dict], encoding: str = "gbk") -> Path:
    path = landing / "calls" / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = csv_text(list(call_logs.CONTRACT.column_names), rows)
    header, _, body = text.partition("\n")
    header = ",".join(CHINESE_HEADER[c] for c in header.split(","))
    path.write_bytes((header + "\n" + body).encode(encoding))
    return path


def write_surveys(landing: Path, day: str, rows: list[dict]) -> Path:
    path = landing / "surveys" / f"{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_complaints(landing: Path, day: str, rows: list[dict]) -> Path:
    path = landing / "complaints" / f"{day}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_audits(landing: Path, month: str, rows: list[dict], *, title: bool = True) -> Path:
    from openpyxl import Workbook

    from dagster_project.lib.ingest.audits import CONTRACT

    path = landing / "audits" / f"{month}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append([f"都邦财险 模拟赔案/暗访检查记录 {month}"])
    ws.append(list(CONTRACT.column_names))
    for row in rows:
        ws.append([row.get(c) for c in CONTRACT.column_names])
    wb.save(path)
    return path


WRITERS = {
    "policies": (write_policies, policy_row),
    "claim_events": (write_claims, claim_row),
    "call_logs": (write_calls, call_row),
    "surveys": (write_surveys, survey_row),
    "complaints": (write_complaints, complaint_row),
}


def make_hand_settings(root: Path) -> Settings:
    """Settings on an empty landing folder and warehouse under ``root``."""
    settings = Settings(landing_dir=root / "landing", warehouse_dir=root / "warehouse",
                        reports_dir=root / "reports", outbox_dir=root / "outbox",
                        dagster_home=root / "dagster_home", pii_salt="test-salt-not-secret")
    for path in (settings.landing_dir, settings.warehouse_dir):
        path.mkdir(parents=True, exist_ok=True)
    return settings


def write_clean_days(landing: Path) -> None:
    """Two clean days of every daily source and one month of audits."""
    for day in ("2024-01-05", "2024-01-06"):
        base = 100 if day.endswith("6") else 0
        write_policies(landing, day, [policy_row(base + i, day) for i in range(1, 4)])
        write_claims(landing, day, [claim_row(base + i, day) for i in range(1, 4)])
        write_calls(landing, day, [call_row(base + i, day) for i in range(1, 4)])
        write_surveys(landing, day, [survey_row(base + i, day) for i in range(1, 4)])
        write_complaints(landing, day, [complaint_row(base + i, day) for i in range(1, 3)])
    write_audits(landing, "2024-01", [audit_row(i) for i in range(1, 4)])
