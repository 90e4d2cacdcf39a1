"""The bad-input catalogue: defective landing files written next to the clean data.

``write_defects(out_dir, last_day)`` writes one file per defect on its own day after the clean
range (audits: its own month), so a defect never mixes with clean files and every clean row of
a defect file is easy to account for. Each file holds a few clean rows plus the defect; the keys
are in a reserved range (serials starting 99) so they never collide with generated data.
``_defects.json`` lists every defect: its file, what is wrong, and the expected outcome —

- ``loaded``: nothing to repair, the file loads as is (e.g. a quoted newline is valid CSV);
- ``normalized``: the value or framing is repaired unambiguously and the ledger notes it;
- ``flagged``: loads, with a ledger note (a reference to a policy/claim not loaded yet);
- ``quarantined``: the listed lines go to ``raw.quarantine_<source>`` with ``reason_code``;
- ``failed``: the file fails its partition with a message containing ``message``;
- ``ignored``: the entry is outside the landing contract (a name that does not fit, a date outside
  the partitions, a symbolic link, a folder); ingest records it in the ledger as ``ignored`` with the
  reason (``message``) and never reads it.

The expectations are what ``tests/reliability/test_defects.py`` checks, one test per defect.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from dagster_project.lib.ingest import audits as audits_mod
from dagster_project.lib.ingest import call_logs as calls_mod
from dagster_project.lib.ingest import claim_events as claims_mod
from dagster_project.lib.ingest import policies as policies_mod

MANIFEST_NAME = "_defects.json"
VERY_LONG_FIELD_CHARS = 3_000_000  # above DuckDB's 2 MB maximum line size
UNKNOWN_POLICY = "PZZ9999999999"
UNKNOWN_CLAIM = "CLZZ9999999999"
HOSTILE_TEXT = ('<script>alert("x")</script> \'; DROP TABLE marts.mart_complaints; -- '
                '=HYPERLINK("http://evil.example","点我") +1 -2 @SUM(A1) 电话13812345678 身份证22010119800101123X')


@dataclass
class Defect:
    id: str
    source: str
    file: str  # relative to the landing folder
    defect: str  # what is wrong, for the README table
    outcome: str  # loaded | normalized | flagged | quarantined | failed | ignored
    rows_landed: int | None = None
    rows_loaded: int | None = None
    rows_quarantined: int | None = None
    reason_code: str | None = None
    quarantined_lines: list[int] = field(default_factory=list)
    note: str | None = None  # substring of the ledger note (normalized / flagged)
    message: str | None = None  # substring of the failure message
    clean_keys: list[str] = field(default_factory=list)  # keys that must be in raw.<source>


class _Writer:
    def __init__(self, out_dir: Path, last_day: date):
        self.out = out_dir
        self.next_day = last_day + timedelta(days=1)
        month = date(last_day.year, last_day.month, 1)
        self.next_month = (month + timedelta(days=32)).replace(day=1)
        self.serial = 0
        self.defects: list[Defect] = []

    def day(self) -> date:
        d = self.next_day
        self.next_day += timedelta(days=1)
        return d

    def month(self) -> date:
        m = self.next_month
        self.next_month = (m + timedelta(days=32)).replace(day=1)
        return m

    def n(self) -> int:
        self.serial += 1
        return self.serial

    # ------------------------------------------------------------------ clean rows (contract names)
    def policy(self, day: date, **changes) -> dict:
        n = self.n()
        row = {"policy_no": f"PJL99{n:08d}", "customer_id": f"C99{n:07d}", "customer_name": "缺陷样例",
               "id_card_no": "22010119800101123X", "phone": "13812345678", "branch_code": "JL",
               "line_of_business": "MOTOR", "business_source": "DIRECT", "sum_insured": "100000.00",
               "premium": "3500.50", "vehicle_price": "150000.00", "issue_date": day.isoformat(),
               "start_date": day.isoformat(), "end_date": (day + timedelta(days=364)).isoformat(),
               "renewal_of": "", "status": "ACTIVE"}
        return {**row, **changes}

    def claim(self, day: date, **changes) -> dict:
        n = self.n()
        row = {"event_id": f"E99{n:010d}", "claim_no": "CLJL9900000001", "policy_no": "PJL9900000001",
               "event_type": "REPORTED", "event_ts": f"{day} 10:15:00", "amount": "5200.00", "surveyor_id": "",
               "payment_method": "", "injury": "N", "location_type": "URBAN", "report_channel": "PHONE"}
        return {**row, **changes}

    def call(self, day: date, **changes) -> dict:
        n = self.n()
        d = day.strftime("%Y/%m/%d")
        row = {"call_id": f"CA99{n:010d}", "direction": "呼入", "call_type": "报案", "queue": "CLAIM_REPORT",
               "phone": "13912345678", "policy_no": "PJL9900000001", "claim_no": "", "agent_id": "A0012",
               "branch_code": "JL", "offered_ts": f"{d} 09:00:00", "answered_ts": f"{d} 09:00:12",
               "ended_ts": f"{d} 09:05:00", "abandoned": "否", "wrap_up_seconds": "30", "outcome": ""}
        return {**row, **changes}

    def survey(self, day: date, **changes) -> dict:
        n = self.n()
        row = {"response_id": f"R99{n:010d}", "channel": "SMS", "sent_ts": f"{day} 08:00:00",
               "responded_ts": f"{day} 09:30:00", "policy_no": "PJL9900000001", "claim_no": "CLJL9900000001",
               "complaint_no": None, "stage": "REPORT", "score": 5, "nps": 9, "comment": "报案很快，满意",
               "agent_id": "A0012"}
        return {**row, **changes}

    def complaint(self, day: date, **changes) -> dict:
        n = self.n()
        row = {"complaint_no": f"CPJL99{n:06d}", "received_ts": f"{day} 10:15:00", "channel": "HOTLINE",
               "branch_code": "JL", "policy_no": "PJL9900000001", "claim_no": None, "category": "CLAIM_DELAY",
               "complainant": {"name": "缺陷投诉人", "phone": "13812345678"}, "is_accepted": True,
               "is_duplicate": False, "is_withdrawn": False, "liability": "PENDING", "extension_level": 0,
               "status": "OPEN", "closed_ts": None, "resolution": None, "updated_ts": f"{day} 10:20:00",
               "actions": [{"ts": f"{day} 10:20:00", "action": "ACCEPTED", "handler_id": "H0012"}]}
        return {**row, **changes}

    def audit(self, day: date, **changes) -> dict:
        n = self.n()
        row = {"audit_id": f"AU99{n:06d}", "audit_date": day, "branch_code": "JL", "auditor_id": "Q001",
               "scenario": "SIMULATED_CLAIM", "surveyor_arrival_minutes": 45, "sla_minutes": 60,
               "assessment_score": 88.5, "payment_convenience_score": 92, "passed": "Y", "findings": "到场及时"}
        return {**row, **changes}

    # ------------------------------------------------------------------ serializers
    @staticmethod
    def csv_text(columns: list[str], rows: list[dict], header: list[str] | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header or columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
        return out.getvalue()

    def path(self, folder: str, name: str) -> tuple[Path, str]:
        path = self.out / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, f"{folder}/{name}"

    def add(self, **kwargs) -> None:
        self.defects.append(Defect(**kwargs))


POLICY_COLS = list(policies_mod.CONTRACT.column_names)
CLAIM_COLS = list(claims_mod.CONTRACT.column_names)
CALL_COLS = list(calls_mod.CONTRACT.column_names)
CALL_HEADER_ZH = [{v: k for k, v in calls_mod.HEADER_MAP.items()}[c] for c in CALL_COLS]
AUDIT_COLS = list(audits_mod.CONTRACT.column_names)


def _policies(w: _Writer) -> None:
    def policy_file(defect_id, text_of, description, outcome, *, changes=(), encoding="utf-8", **expect):
        day = w.day()
        rows = [w.policy(day) for _ in range(3)]
        for position, change in changes:
            rows.insert(position, w.policy(day, **change))
        path, rel = w.path("policies", f"{day}.csv")
        data = text_of(rows, day)
        path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
        keys = [r["policy_no"] for r in rows]
        bad = set(expect.get("quarantined_lines", []))
        clean = [k for i, k in enumerate(keys, start=1) if i not in bad]
        w.add(id=defect_id, source="policies", file=rel, defect=description, outcome=outcome,
              rows_landed=expect.pop("rows_landed", len(rows)), clean_keys=clean, **expect)
        return rows

    plain = lambda rows, day: w.csv_text(POLICY_COLS, rows)  # noqa: E731
    policy_file("policies_unexpected_bom", lambda r, d: "\ufeff" + plain(r, d),
                "UTF-8 byte-order mark in a file whose contract has none", "normalized",
                rows_loaded=3, rows_quarantined=0, note="byte-order mark where none is expected")
    policy_file("policies_crlf_line_endings", lambda r, d: plain(r, d).replace("\n", "\r\n"),
                "CRLF (Windows) line endings", "normalized", rows_loaded=3, rows_quarantined=0,
                note="CRLF line endings")
    policy_file("policies_chinese_style_date", plain, "Chinese-style date 2024年1月2日 in issue_date",
                "normalized", changes=[(1, {"issue_date": "__CN__"})], rows_loaded=4, rows_quarantined=0,
                note="issue_date: Chinese-style date (1 row)")
    policy_file("policies_mixed_date_formats", plain,
                "mixed year-first date formats in start_date (2024/01/02, 2024.1.2, 20240102)", "normalized",
                changes=[(1, {"start_date": "__SLASH__"}), (2, {"start_date": "__DOT__"}),
                         (3, {"start_date": "__COMPACT__"})],
                rows_loaded=6, rows_quarantined=0, note="start_date: date format (3 rows)")
    policy_file("policies_ambiguous_day_month_date", plain,
                "day/month date 03/04/2024 in start_date (March or April?)", "quarantined",
                changes=[(1, {"start_date": "03/04/2024"})], rows_loaded=3, rows_quarantined=1,
                reason_code="BAD_DATE", quarantined_lines=[2])

    def dup_header(rows, day):
        lines = plain(rows, day).splitlines(keepends=True)
        return "".join(lines[:3] + [lines[0]] + lines[3:])  # header again after data line 2
    rows = policy_file("policies_duplicated_header_line", dup_header,
                       "the header line repeated inside the file (two exports concatenated)", "quarantined",
                       rows_landed=4, rows_loaded=3, rows_quarantined=1, reason_code="REPEATED_HEADER",
                       quarantined_lines=[3])
    w.defects[-1].clean_keys = [r["policy_no"] for r in rows]  # all three data rows load
    policy_file("policies_trailing_delimiter", lambda r, d: plain(r, d).replace("\n", ",\n"),
                "a trailing delimiter at the end of every line", "normalized", rows_loaded=3,
                rows_quarantined=0, note="trailing delimiter")
    policy_file("policies_quoted_newline", plain, "a quoted field containing a line break (customer_name)",
                "loaded", changes=[(1, {"customer_name": "张\n三"})], rows_loaded=4, rows_quarantined=0)
    policy_file("policies_very_long_field", plain,
                f"a {VERY_LONG_FIELD_CHARS:,}-character customer_name (line above DuckDB's 2 MB maximum)",
                "quarantined", changes=[(1, {"customer_name": "长" * 10 + "A" * VERY_LONG_FIELD_CHARS})],
                rows_loaded=3, rows_quarantined=1, reason_code="LINE_TOO_LONG", quarantined_lines=[2])
    policy_file("policies_nul_bytes", plain, "NUL bytes (0x00) inside customer_name", "quarantined",
                changes=[(2, {"customer_name": "王\x00\x00五"})], rows_loaded=3, rows_quarantined=1,
                reason_code="NUL_BYTE", quarantined_lines=[3])

    day = w.day()
    path, rel = w.path("policies", f"{day}.csv")
    path.write_bytes(b"")
    w.add(id="policies_zero_byte_file", source="policies", file=rel, defect="a zero-byte CSV file",
          outcome="failed", message="empty file (0 bytes, no header line)")

    day = w.day()
    path, rel = w.path("policies", f"{day}.csv")
    path.write_text("\ufeff" + w.csv_text(CLAIM_COLS, [w.claim(day)]), encoding="utf-8")
    w.add(id="policies_folder_holds_a_claims_file", source="policies", file=rel,
          defect="a claim-events file in the policies folder", outcome="failed",
          message="this is a claim_events file (its header), in the policies/ folder")


def _policies_hostile(w: _Writer) -> None:
    """Framing, strictness and cross-field classes of the hostile-input review (docs/ingest.md)."""
    def policy_file(defect_id, description, outcome, text_of=None, *, changes=(), extra_rows=0, data=None, **expect):
        day = w.day()
        rows = [w.policy(day) for _ in range(3 + extra_rows)]
        for position, change in changes:
            rows.insert(position, w.policy(day, **change))
        path, rel = w.path("policies", f"{day}.csv")
        text = w.csv_text(POLICY_COLS, rows)
        payload = data if data is not None else (text_of(text) if text_of else text)
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
        bad = set(expect.get("quarantined_lines", []))
        clean = [r["policy_no"] for i, r in enumerate(rows, start=1) if i not in bad] if outcome != "failed" else []
        w.add(id=defect_id, source="policies", file=rel, defect=description, outcome=outcome,
              rows_landed=None if outcome == "failed" else expect.pop("rows_landed", len(rows)), clean_keys=clean,
              **expect)

    policy_file("policies_stray_quote", "an unterminated quote in customer_name, 30 clean rows after it", "quarantined",
                lambda t: t.replace("__STRAY__", '"缺陷样例'), changes=[(1, {"customer_name": "__STRAY__"})],
                extra_rows=30, rows_loaded=33, rows_quarantined=1, reason_code="BAD_QUOTING", quarantined_lines=[2])
    policy_file("policies_quote_pair_across_lines", "two stray quotes four lines apart (a quoted field would swallow "
                "the lines between them)", "quarantined",
                lambda t: t.replace("__STRAY__", '缺"陷'), changes=[(1, {"customer_name": "__STRAY__"}),
                                                               (5, {"customer_name": "__STRAY__"})],
                rows_loaded=3, rows_quarantined=2, reason_code="BAD_QUOTING", quarantined_lines=[2, 5])
    policy_file("policies_lone_cr_line_endings", "lone CR (old Mac) line endings", "normalized",
                lambda t: t.replace("\n", "\r"), rows_loaded=3, rows_quarantined=0, note="lone CR line endings")
    policy_file("policies_mixed_line_endings", "CRLF and LF line endings mixed in one file", "normalized",
                lambda t: t.replace("\n", "\r\n", 2), rows_loaded=3, rows_quarantined=0, note="mixed line endings")
    policy_file("policies_blank_lines", "blank lines between the records", "normalized",
                lambda t: t.replace("\n", "\n\n", 3)[::-1].replace("\n\n", "\n", 1)[::-1], rows_loaded=3,
                rows_quarantined=0, note="blank line(s): not records")
    policy_file("policies_header_missing", "the header line is missing (the first line is a customer's record)",
                "failed", lambda t: t.split("\n", 1)[1], message="the first line is not a header")
    policy_file("policies_all_nul_bytes", "a file of NUL bytes only (a failed copy)", "failed",
                data=b"\x00" * 4096, message="NUL bytes in the first line")
    policy_file("policies_excess_decimals", "premium 3500.555: more decimals than the contract's two", "quarantined",
                changes=[(1, {"premium": "3500.555"})], rows_loaded=3, rows_quarantined=1,
                reason_code="TOO_MANY_DECIMALS", quarantined_lines=[2])
    policy_file("policies_digit_separator", "premium 1_000 (a digit separator) and 0x4 (hexadecimal)", "quarantined",
                changes=[(1, {"premium": "1_000"}), (2, {"premium": "0x4"})], rows_loaded=3, rows_quarantined=2,
                reason_code="BAD_NUMBER", quarantined_lines=[2, 3])
    policy_file("policies_implausible_dates", "issue_date 0000-01-01 and end_date 9999-12-31", "quarantined",
                changes=[(1, {"issue_date": "0000-01-01"}), (2, {"end_date": "9999-12-31"})], rows_loaded=3,
                rows_quarantined=2, reason_code="IMPLAUSIBLE_DATE", quarantined_lines=[2, 3])
    policy_file("policies_ends_before_start", "a policy whose end_date precedes its start_date", "quarantined",
                changes=[(1, {"end_date": (w.next_day - timedelta(days=1)).isoformat()})], rows_loaded=3,
                rows_quarantined=1,
                reason_code="ENDS_BEFORE_START", quarantined_lines=[2])
    policy_file("policies_schema_drift", "an unknown extra column (agent_code) in the header", "normalized",
                lambda t: "\n".join(line + (",agent_code" if i == 0 else ",AG01") if line else line
                                    for i, line in enumerate(t.split("\n"))),
                rows_loaded=3, rows_quarantined=0, note="schema drift: 1 column(s) not in the contract, ignored: agent_code")
    policy_file("policies_header_only", "a header line and no records (a day without policies)", "loaded",
                lambda t: t.split("\n", 1)[0] + "\n", rows_landed=0, rows_loaded=0, rows_quarantined=0)
    for r in w.defects[-1:]:
        r.clean_keys = []

    # Landing entries outside the contract: ignored with their reason, never read.
    day = w.day()
    full_width = day.isoformat().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    ignored = [
        ("policies_full_width_digits_in_name", f"{full_width}.csv", "file",
         "a file name with full-width digits (２０２５-12-30.csv)", "non-ASCII digits"),
        ("policies_upper_case_suffix", f"{day}.CSV", "file", "the suffix in capitals (2025-12-31.CSV)",
         "suffix in the wrong case"),
        ("policies_dated_before_partitions", "2023-12-31.csv", "file", "a file dated before the first partition",
         "before the first partition"),
        ("policies_dated_in_the_future", "2999-01-01.csv", "file", "a file dated far in the future", "in the future"),
        ("policies_symbolic_link", f"{day}.csv", "link", "a symbolic link to /etc/passwd", "symbolic link"),
        ("policies_folder_named_like_a_file", f"{w.day()}.csv", "folder", "a folder named like a landing file",
         "a folder"),
    ]
    for defect_id, name, kind, description, reason in ignored:
        path, rel = w.path("policies", name)
        if kind == "file":
            path.write_text(w.csv_text(POLICY_COLS, [w.policy(day)]), encoding="utf-8")
        elif kind == "link":
            path.symlink_to("/etc/passwd")
        else:
            path.mkdir()
        w.add(id=defect_id, source="policies", file=rel, defect=description,
              outcome="ignored", message=reason)


def _fill_dates(out_dir: Path, defects: list[Defect]) -> None:
    """Replace the date placeholders of the policies files by the file's own day in each style."""
    for d in defects:
        if d.source != "policies" or not d.file.endswith(".csv"):
            continue
        path = out_dir / d.file
        data = path.read_bytes()
        if b"__" not in data:
            continue
        day = date.fromisoformat(Path(d.file).stem)
        text = data.decode("utf-8")
        for token, value in {"__CN__": f"{day.year}年{day.month}月{day.day}日", "__SLASH__": day.strftime("%Y/%m/%d"),
                             "__DOT__": f"{day.year}.{day.month}.{day.day}", "__COMPACT__": day.strftime("%Y%m%d")}.items():
            text = text.replace(token, value)
        path.write_bytes(text.encode("utf-8"))


def _claims(w: _Writer) -> None:
    def claim_file(defect_id, description, outcome, *, changes=(), bom=True, quote_all=False, **expect):
        day = w.day()
        rows = [w.claim(day) for _ in range(3)]
        for position, change in changes:
            rows.insert(position, w.claim(day, **{k: v.replace("__DAY__", str(day)) if isinstance(v, str) else v
                                                  for k, v in change.items()}))
        path, rel = w.path("claims", f"{day}.csv")
        text = w.csv_text(CLAIM_COLS, rows)
        path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
        bad = set(expect.get("quarantined_lines", []))
        clean = [r["event_id"] for i, r in enumerate(rows, start=1) if i not in bad]
        w.add(id=defect_id, source="claim_events", file=rel, defect=description, outcome=outcome,
              rows_landed=len(rows), clean_keys=clean, **expect)

    claim_file("claims_missing_bom", "no byte-order mark in a file whose contract has one", "normalized",
               bom=False, rows_loaded=3, rows_quarantined=0, note="byte-order mark missing")
    claim_file("claims_full_width_digits", "full-width digits in amount and event_ts (５２００．００)", "normalized",
               changes=[(1, {"amount": "５２００．００", "event_ts": "__DAY__ １０：１５：００"})],
               rows_loaded=4, rows_quarantined=0, note="amount: full-width digits (1 row)")
    claim_file("claims_thousands_separators", "thousands separators in amount (\"12,345.60\")", "normalized",
               changes=[(1, {"amount": "12,345.60"})], rows_loaded=4, rows_quarantined=0,
               note="amount: thousands separators (1 row)")
    claim_file("claims_event_for_unknown_policy", "a claim event for a policy that was never loaded", "flagged",
               changes=[(1, {"policy_no": UNKNOWN_POLICY, "claim_no": "CLZZ9900000001"})],
               rows_loaded=4, rows_quarantined=0, note="1 row with a policy_no not (yet) in raw.policies")
    day_rows = ("claims_duplicate_event_id", "the same event_id twice in one file", "quarantined")
    day = w.day()
    rows = [w.claim(day) for _ in range(3)]
    rows.append(dict(rows[0], amount="9999.00"))
    path, rel = w.path("claims", f"{day}.csv")
    path.write_text("\ufeff" + w.csv_text(CLAIM_COLS, rows), encoding="utf-8")
    w.add(id=day_rows[0], source="claim_events", file=rel, defect=day_rows[1], outcome=day_rows[2], rows_landed=4,
          rows_loaded=3, rows_quarantined=1, reason_code="DUPLICATE_KEY", quarantined_lines=[4],
          clean_keys=[r["event_id"] for r in rows[:3]])
    claim_file("claims_negative_amount", "a negative amount", "quarantined",
               changes=[(0, {"amount": "-100.00"})], rows_loaded=3, rows_quarantined=1,
               reason_code="OUT_OF_RANGE", quarantined_lines=[1])


def _claims_hostile(w: _Writer) -> None:
    def claim_file(defect_id, description, outcome, changes, **expect):
        day = w.day()
        rows = [w.claim(day) for _ in range(3)]
        for position, change in changes:
            rows.insert(position, w.claim(day, **{k: v.replace("__DAY__", str(day)) for k, v in change.items()}))
        path, rel = w.path("claims", f"{day}.csv")
        path.write_text("\ufeff" + w.csv_text(CLAIM_COLS, rows), encoding="utf-8")
        bad = set(expect.get("quarantined_lines", []))
        w.add(id=defect_id, source="claim_events", file=rel, defect=description, outcome=outcome, rows_landed=len(rows),
              clean_keys=[r["event_id"] for i, r in enumerate(rows, start=1) if i not in bad], **expect)

    start = date.fromisoformat(Path(w.defects[0].file).stem)  # the first catalogue policy starts that day
    before = (start - timedelta(days=400)).isoformat()
    claim_file("claims_reported_before_policy_start", "a claim reported 400 days before its policy started",
               "quarantined", [(1, {"event_ts": f"{before} 10:00:00", "claim_no": "CLJL9900000070"})],
               rows_loaded=3, rows_quarantined=1, reason_code="CLAIM_BEFORE_POLICY_START", quarantined_lines=[2])
    claim_file("claims_arrival_before_report", "a surveyor arrival an hour before the claim was reported", "quarantined",
               [(0, {"claim_no": "CLJL9900000077", "event_ts": "__DAY__ 10:15:00"}),
                (1, {"claim_no": "CLJL9900000077", "event_type": "SURVEYOR_ARRIVED", "event_ts": "__DAY__ 09:15:00",
                     "amount": "", "surveyor_id": "S00012"})],
               rows_loaded=4, rows_quarantined=1, reason_code="EVENT_BEFORE_REPORT", quarantined_lines=[2])
    claim_file("claims_excess_decimals", "amount 5200.005: more decimals than the contract's two", "quarantined",
               [(1, {"amount": "5200.005"})], rows_loaded=3, rows_quarantined=1, reason_code="TOO_MANY_DECIMALS",
               quarantined_lines=[2])


def _calls(w: _Writer) -> None:
    def call_file(defect_id, description, outcome, *, changes=(), encoding="gbk", **expect):
        day = w.day()
        rows = [w.call(day) for _ in range(3)]
        for position, change in changes:
            rows.insert(position, w.call(day, **{k: v.replace("__DAY__", str(day)) for k, v in change.items()}))
        path, rel = w.path("calls", f"{day}.csv")
        path.write_bytes(w.csv_text(CALL_COLS, rows, header=CALL_HEADER_ZH).encode(encoding))
        bad = set(expect.get("quarantined_lines", []))
        clean = [r["call_id"] for i, r in enumerate(rows, start=1) if i not in bad]
        w.add(id=defect_id, source="call_logs", file=rel, defect=description, outcome=outcome,
              rows_landed=None if outcome == "failed" else len(rows),
              clean_keys=[] if outcome == "failed" else clean, **expect)

    call_file("calls_utf8_instead_of_gbk", "the CTI export saved as UTF-8 instead of GBK", "failed",
              encoding="utf-8", message="encoded as UTF-8, expected GBK")
    call_file("calls_dash_timestamps", "timestamps with dashes (2024-01-02 09:00:00) where the CTI writes slashes",
              "normalized", changes=[(1, {"offered_ts": "__DAY__ 09:00:00", "answered_ts": "__DAY__ 09:00:10",
                                          "ended_ts": "__DAY__ 09:04:00"})],
              rows_loaded=4, rows_quarantined=0, note="offered_ts: date format (1 row)")
    call_file("calls_unknown_direction_code", "an unknown code in 呼叫方向 (内部)", "quarantined",
              changes=[(1, {"direction": "内部"})], rows_loaded=3, rows_quarantined=1,
              reason_code="UNKNOWN_CODE", quarantined_lines=[2])


def _calls_hostile(w: _Writer) -> None:
    def call_file(defect_id, description, outcome, changes, *, corrupt_line=None, **expect):
        day = w.day()
        rows = [w.call(day) for _ in range(3)]
        for position, change in changes:
            rows.insert(position, w.call(day, **change))
        path, rel = w.path("calls", f"{day}.csv")
        data = w.csv_text(CALL_COLS, rows, header=CALL_HEADER_ZH).encode("gbk")
        if corrupt_line is not None:
            lines = data.split(b"\n")
            lines[corrupt_line] = lines[corrupt_line].replace("报案".encode("gbk"), b"\xff\xfe", 1)
            data = b"\n".join(lines)
        path.write_bytes(data)
        bad = set(expect.get("quarantined_lines", []))
        w.add(id=defect_id, source="call_logs", file=rel, defect=description, outcome=outcome, rows_landed=len(rows),
              clean_keys=[r["call_id"] for i, r in enumerate(rows, start=1) if i not in bad], **expect)

    d = w.next_day.strftime("%Y/%m/%d")
    call_file("calls_answered_before_offered", "a call answered one second before it was offered", "quarantined",
              [(1, {"offered_ts": f"{d} 09:00:00", "answered_ts": f"{d} 08:59:59"})], rows_loaded=3,
              rows_quarantined=1, reason_code="ANSWERED_BEFORE_OFFERED", quarantined_lines=[2])
    call_file("calls_hexadecimal_wrap_up", "wrap_up_seconds 0x1F (hexadecimal)", "quarantined",
              [(1, {"wrap_up_seconds": "0x1F"})], rows_loaded=3, rows_quarantined=1, reason_code="BAD_NUMBER",
              quarantined_lines=[2])
    call_file("calls_invalid_gbk_byte", "one byte sequence that is not GBK in one record", "quarantined", [],
              corrupt_line=2, rows_loaded=2, rows_quarantined=1, reason_code="BAD_ENCODING", quarantined_lines=[2])


def _surveys(w: _Writer) -> None:
    def survey_file(defect_id, description, outcome, lines_of, **expect):
        day = w.day()
        rows = [w.survey(day) for _ in range(3)]
        lines, keys = lines_of(day, rows)
        path, rel = w.path("surveys", f"{day}.jsonl")
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        w.add(id=defect_id, source="surveys", file=rel, defect=description, outcome=outcome, clean_keys=keys, **expect)

    dumps = lambda r: json.dumps(r, ensure_ascii=False)  # noqa: E731

    def unknown_claim(day, rows):
        rows.insert(1, w.survey(day, claim_no=UNKNOWN_CLAIM, policy_no=UNKNOWN_POLICY))
        return [dumps(r) for r in rows], [r["response_id"] for r in rows]
    survey_file("surveys_response_for_unknown_claim", "a survey response for a claim that was never loaded",
                "flagged", unknown_claim, rows_landed=4, rows_loaded=4, rows_quarantined=0,
                note="1 row with a claim_no not (yet) in raw.claim_events")

    def raw_newline(day, rows):
        broken = w.survey(day, comment="第一行@@第二行")
        lines = [dumps(r) for r in rows]
        lines.insert(1, dumps(broken).replace("@@", "\n"))  # a raw line break inside the string
        return lines, [r["response_id"] for r in rows] + [broken["response_id"]]
    survey_file("surveys_raw_newline_in_comment", "a raw (unescaped) line break inside a comment string",
                "normalized", raw_newline, rows_landed=4, rows_loaded=4, rows_quarantined=0,
                note="a line break inside a string (lines 2-3) joined")

    def not_json(day, rows):
        lines = [dumps(r) for r in rows]
        lines.insert(2, "<html><body>502 Bad Gateway</body></html>")
        return lines, [r["response_id"] for r in rows]
    survey_file("surveys_line_not_json", "a line that is not JSON (an HTML error page)", "quarantined", not_json,
                rows_landed=4, rows_loaded=3, rows_quarantined=1, reason_code="BAD_JSON", quarantined_lines=[3])

    def hostile(day, rows):
        rows.insert(0, w.survey(day, comment=HOSTILE_TEXT, score=1))
        return [dumps(r) for r in rows], [r["response_id"] for r in rows]
    survey_file("surveys_hostile_comment",
                "a comment with HTML, SQL quotes, a spreadsheet formula, a phone and an ID number", "loaded",
                hostile, rows_landed=4, rows_loaded=4, rows_quarantined=0)


def _surveys_hostile(w: _Writer) -> None:
    dumps = lambda r: json.dumps(r, ensure_ascii=False)  # noqa: E731

    def survey_file(defect_id, description, outcome, lines_of, *, raw: bytes | None = None, **expect):
        day = w.day()
        rows = [w.survey(day) for _ in range(3)]
        lines, keys = lines_of(day, rows)
        path, rel = w.path("surveys", f"{day}.jsonl")
        path.write_bytes(raw if raw is not None else "".join(line + "\n" for line in lines).encode("utf-8"))
        w.add(id=defect_id, source="surveys", file=rel, defect=description, outcome=outcome, clean_keys=keys, **expect)

    def fractional(day, rows):
        lines = [dumps(r) for r in rows]
        lines.insert(1, dumps(w.survey(day, score="__A__")).replace('"__A__"', "3.5"))
        lines.insert(2, dumps(w.survey(day, score="__B__")).replace('"__B__"', '"0x4"'))
        return lines, [r["response_id"] for r in rows]
    survey_file("surveys_fractional_and_hex_score", "score 3.5 and \"0x4\" (never rounded or read as hexadecimal)",
                "quarantined", fractional, rows_landed=5, rows_loaded=3, rows_quarantined=2, reason_code="BAD_NUMBER",
                quarantined_lines=[2, 3])

    def duplicate_key(day, rows):
        lines = [dumps(r) for r in rows]
        lines.insert(1, dumps(w.survey(day, score=1))[:-1] + ', "score": 5}')
        return lines, [r["response_id"] for r in rows]
    survey_file("surveys_duplicate_json_key", "a record with the key score twice (1, then 5)", "quarantined",
                duplicate_key, rows_landed=4, rows_loaded=3, rows_quarantined=1, reason_code="DUPLICATE_JSON_KEY",
                quarantined_lines=[2])

    def responded_early(day, rows):
        rows.insert(1, w.survey(day, sent_ts=f"{day} 09:00:00", responded_ts=f"{day} 08:00:00"))
        return [dumps(r) for r in rows], [r["response_id"] for i, r in enumerate(rows) if i != 1]
    survey_file("surveys_responded_before_sent", "a response an hour before the survey was sent", "quarantined",
                responded_early, rows_landed=4, rows_loaded=3, rows_quarantined=1, reason_code="RESPONDED_BEFORE_SENT",
                quarantined_lines=[2])

    day_rows = [w.survey(w.next_day) for _ in range(3)]
    survey_file("surveys_lone_cr_line_endings", "JSON Lines with lone CR line endings", "normalized",
                lambda day, rows: ([], [r["response_id"] for r in day_rows]),
                raw="".join(dumps(r) + "\r" for r in day_rows).encode("utf-8"),
                rows_landed=3, rows_loaded=3, rows_quarantined=0, note="lone CR line endings")

    good = [w.survey(w.next_day) for _ in range(3)]
    survey_file("surveys_invalid_utf8_line", "one line with bytes that are not UTF-8", "quarantined",
                lambda day, rows: ([], [good[0]["response_id"], good[2]["response_id"]]),
                raw=(dumps(good[0]) + "\n").encode() + dumps(good[1]).encode().replace("满意".encode(), b"\xff\xfe") + b"\n"
                    + (dumps(good[2]) + "\n").encode(),
                rows_landed=3, rows_loaded=2, rows_quarantined=1, reason_code="BAD_ENCODING", quarantined_lines=[2])

    def drift(day, rows):
        rows[0]["device"] = "iPhone"
        return [dumps(r) for r in rows], [r["response_id"] for r in rows]
    survey_file("surveys_schema_drift", "an unknown extra key (device) in the records", "normalized", drift,
                rows_landed=3, rows_loaded=3, rows_quarantined=0, note="schema drift: 1 key(s) not in the contract")

    survey_file("surveys_zero_byte_file", "a 0-byte file (a day without responses)", "loaded",
                lambda day, rows: ([], []), raw=b"", rows_landed=0, rows_loaded=0, rows_quarantined=0)


def _complaints(w: _Writer) -> None:
    def complaint_file(defect_id, description, outcome, elements_of, **expect):
        day = w.day()
        rows = [w.complaint(day) for _ in range(2)]
        elements, keys = elements_of(day, rows)
        path, rel = w.path("complaints", f"{day}.json")
        text = elements if isinstance(elements, str) else json.dumps(elements, ensure_ascii=False, indent=1)
        path.write_text(text, encoding="utf-8")
        w.add(id=defect_id, source="complaints", file=rel, defect=description, outcome=outcome, clean_keys=keys,
              **expect)

    def closed_early(day, rows):
        rows.insert(1, w.complaint(day, status="CLOSED", received_ts=f"{day} 15:00:00",
                                   closed_ts=f"{day} 09:00:00", resolution="已解决", updated_ts=f"{day} 15:10:00"))
        return rows, [rows[0]["complaint_no"], rows[2]["complaint_no"]]
    complaint_file("complaints_closed_before_received", "a ticket closed before it was received", "quarantined",
                   closed_early, rows_landed=3, rows_loaded=2, rows_quarantined=1,
                   reason_code="CLOSED_BEFORE_RECEIVED", quarantined_lines=[2])

    def truncated(day, rows):
        return json.dumps(rows, ensure_ascii=False, indent=1)[:-60], []
    complaint_file("complaints_truncated_json", "a JSON array cut off mid-element (interrupted transfer)", "failed",
                   truncated, message="invalid or truncated JSON")

    def chinese_ts(day, rows):
        rows.insert(1, w.complaint(day, received_ts=f"{day.year}年{day.month}月{day.day}日 10:15:00"))
        return rows, [r["complaint_no"] for r in rows]
    complaint_file("complaints_chinese_style_timestamp", "received_ts written 2024年1月2日 10:15:00", "normalized",
                   chinese_ts, rows_landed=3, rows_loaded=3, rows_quarantined=0,
                   note="received_ts: Chinese-style date (1 row)")

    def chinese_bool(day, rows):
        rows.insert(0, w.complaint(day, is_accepted="是"))
        return rows, [r["complaint_no"] for r in rows[1:]]
    complaint_file("complaints_boolean_as_chinese_text", "is_accepted written 是 instead of true", "quarantined",
                   chinese_bool, rows_landed=3, rows_loaded=2, rows_quarantined=1, reason_code="BAD_BOOLEAN",
                   quarantined_lines=[1])

    def hostile(day, rows):
        rows.insert(0, w.complaint(day, status="CLOSED", closed_ts=f"{day} 16:00:00", resolution=HOSTILE_TEXT,
                                   updated_ts=f"{day} 16:00:00"))
        return rows, [r["complaint_no"] for r in rows]
    complaint_file("complaints_hostile_resolution",
                   "a resolution with HTML, SQL quotes, a spreadsheet formula, a phone and an ID number", "loaded",
                   hostile, rows_landed=3, rows_loaded=3, rows_quarantined=0)


def _complaints_hostile(w: _Writer) -> None:
    def complaint_file(defect_id, description, outcome, text, keys, **expect):
        day = w.day()
        path, rel = w.path("complaints", f"{day}.json")
        path.write_text(text(day) if callable(text) else text, encoding="utf-8")
        w.add(id=defect_id, source="complaints", file=rel, defect=description, outcome=outcome,
              clean_keys=keys, **expect)

    rows = []

    def duplicate_name(day):
        rows[:] = [w.complaint(day) for _ in range(2)]
        bad = json.dumps(w.complaint(day), ensure_ascii=False).replace('"name": "缺陷投诉人"',
                                                                      '"name": "缺陷投诉人", "name": "另一人"')
        return "[" + ",\n".join([json.dumps(rows[0], ensure_ascii=False), bad, json.dumps(rows[1], ensure_ascii=False)]) + "]"
    complaint_file("complaints_duplicate_nested_key", "a complainant object with the key name twice", "quarantined",
                   duplicate_name, [], rows_landed=3, rows_loaded=2, rows_quarantined=1,
                   reason_code="DUPLICATE_JSON_KEY", quarantined_lines=[2])
    w.defects[-1].clean_keys = [r["complaint_no"] for r in rows]

    def updated_early(day):
        rows[:] = [w.complaint(day) for _ in range(2)]
        bad = w.complaint(day, updated_ts=f"{day} 09:00:00")
        return json.dumps([rows[0], bad, rows[1]], ensure_ascii=False, indent=1)
    complaint_file("complaints_updated_before_received", "updated_ts before received_ts", "quarantined", updated_early,
                   [], rows_landed=3, rows_loaded=2, rows_quarantined=1, reason_code="UPDATED_BEFORE_RECEIVED",
                   quarantined_lines=[2])
    w.defects[-1].clean_keys = [r["complaint_no"] for r in rows]

    complaint_file("complaints_deeply_nested", "an element nested 100,000 arrays deep", "quarantined",
                   lambda day: "[" + "[" * 100_000 + "]" * 100_000 + "]", [], rows_landed=1, rows_loaded=0,
                   rows_quarantined=1, reason_code="BAD_JSON", quarantined_lines=[1])
    complaint_file("complaints_empty_array", "an empty JSON array (a day without tickets)", "loaded", "[]", [],
                   rows_landed=0, rows_loaded=0, rows_quarantined=0)


def _audits(w: _Writer) -> None:
    from openpyxl import Workbook  # deferred: openpyxl costs 0.6 s to import; only the audit workbooks need it

    def workbook(defect_id, description, outcome, build, **expect):
        month = w.month()
        day = month + timedelta(days=9)
        rows = [w.audit(day) for _ in range(3)]
        wb = Workbook()
        keys = build(wb, rows, month)
        path, rel = w.path("audits", f"{month:%Y-%m}.xlsx")
        wb.save(path)
        w.add(id=defect_id, source="audits", file=rel, defect=description, outcome=outcome, clean_keys=keys, **expect)

    def sheet(ws, rows, month, title=True):
        if title:
            ws.append([f"都邦财险 模拟赔案/暗访检查记录 {month:%Y年%m月}"])
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(AUDIT_COLS))  # title layout
        ws.append(AUDIT_COLS)
        for r in rows:
            ws.append([r[c] for c in AUDIT_COLS])

    def merged(wb, rows, month):
        sheet(wb.active, rows, month)
        col = AUDIT_COLS.index("branch_code") + 1
        wb.active.cell(row=4, column=col).value = None
        wb.active.merge_cells(start_row=3, start_column=col, end_row=4, end_column=col)  # JL typed once
        return [r["audit_id"] for r in rows]
    workbook("audits_merged_cells", "branch_code merged over two data rows", "normalized", merged,
             rows_landed=3, rows_loaded=3, rows_quarantined=0, note="merged cells filled with their top-left value")

    def extra_sheet(wb, rows, month):
        notes = wb.active
        notes.title = "填写说明"
        notes.append(["本表每月填写一次"])
        notes.append(["字段", "说明"])
        data = wb.create_sheet("检查记录")
        sheet(data, rows, month)
        return [r["audit_id"] for r in rows]
    workbook("audits_extra_sheet", "an instructions sheet before the audit sheet", "normalized", extra_sheet,
             rows_landed=3, rows_loaded=3, rows_quarantined=0, note="ignored other sheet(s) '填写说明'")

    def no_title(wb, rows, month):
        sheet(wb.active, rows, month, title=False)
        return []
    workbook("audits_title_row_missing", "the title row above the header is missing", "failed", no_title,
             message="title row missing")

    def formula(wb, rows, month):
        sheet(wb.active, rows, month)
        col = AUDIT_COLS.index("surveyor_arrival_minutes") + 1
        wb.active.cell(row=4, column=col).value = "=B3+1"  # saved by openpyxl: no cached value
        return [rows[0]["audit_id"], rows[2]["audit_id"]]
    workbook("audits_formula_without_value", "a formula in surveyor_arrival_minutes saved without its value",
             "quarantined", formula, rows_landed=3, rows_loaded=2, rows_quarantined=1, reason_code="FORMULA_NO_VALUE",
             quarantined_lines=[4])

    def outside_month(wb, rows, month):
        rows[1]["audit_date"] = month - timedelta(days=3)
        sheet(wb.active, rows, month)
        return [rows[0]["audit_id"], rows[2]["audit_id"]]
    workbook("audits_date_outside_month", "an audit dated in the month before the workbook's", "quarantined",
             outside_month, rows_landed=3, rows_loaded=2, rows_quarantined=1, reason_code="OUTSIDE_FILE_MONTH",
             quarantined_lines=[4])

    def drift(wb, rows, month):
        sheet(wb.active, rows, month)
        wb.active.cell(row=2, column=len(AUDIT_COLS) + 1).value = "reviewer"
        wb.active.cell(row=3, column=len(AUDIT_COLS) + 1).value = "Q009"
        return [r["audit_id"] for r in rows]
    workbook("audits_schema_drift", "an unknown extra column (reviewer) right of the header", "normalized", drift,
             rows_landed=3, rows_loaded=3, rows_quarantined=0, note="schema drift: 1 column(s) not in the contract")

    # A workbook dropped into a daily CSV folder: its name does not fit, so it is reported, not read.
    day = w.day()
    path, rel = w.path("claims", f"{day}.xlsx")
    wb = Workbook()
    sheet(wb.active, [w.audit(day)], date(day.year, day.month, 1))
    wb.save(path)
    w.add(id="claims_folder_holds_a_workbook", source="claim_events", file=rel,
          defect="an audit workbook (.xlsx) in the claims folder", outcome="ignored", message="name does not fit")


def write_defects(out_dir: Path, last_day: date) -> list[Defect]:
    """Write the catalogue after ``last_day`` (the clean data's last day) and ``_defects.json``."""
    out_dir = Path(out_dir)
    w = _Writer(out_dir, last_day)
    _policies(w)
    _fill_dates(out_dir, w.defects)
    _policies_hostile(w)
    _claims(w)
    _claims_hostile(w)
    _calls(w)
    _calls_hostile(w)
    _surveys(w)
    _surveys_hostile(w)
    _complaints(w)
    _complaints_hostile(w)
    _audits(w)
    ids = [d.id for d in w.defects]
    assert len(ids) == len(set(ids)), "defect ids must be unique"
    manifest = {"after_day": last_day.isoformat(), "defects": [asdict(d) for d in w.defects]}
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return w.defects


def load_manifest(landing_dir: Path) -> list[Defect]:
    data = json.loads((Path(landing_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
    return [Defect(**d) for d in data["defects"]]
