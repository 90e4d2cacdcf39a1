"""Call logs: ``calls/YYYY-MM-DD.csv``, **GBK**, Chinese column headers, as a Chinese CTI system
exports them; one row per call. Timestamps are written ``YYYY/MM/DD HH:MM:SS``.

The mapping from the CTI's Chinese headers to contract names lives here and nowhere else.
Values keep the CTI's Chinese codes in raw (呼入/呼出, 是/否, 报案 ...); staging decodes them.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from dagster_project.lib.ingest.contract import (
    BRANCH_CODE_PATTERN, CALL_TS_FORMAT, CLAIM_NO_PATTERN, EVENT_PAST_DAYS, PHONE_PATTERN, POLICY_NO_PATTERN, Column, SourceContract,
)
from dagster_project.lib.ingest.landing import LandingFile
from dagster_project.lib.ingest.guard import open_private_text
from dagster_project.lib.ingest.readers import FileUnreadable, Prescan, StageResult, prescan, stage_csv
from dagster_project.lib.reference import BRANCH_CODES

HEADER_MAP: dict[str, str] = {
    "呼叫编号": "call_id",
    "呼叫方向": "direction",
    "呼叫类型": "call_type",
    "技能队列": "queue",
    "客户号码": "phone",
    "保单号": "policy_no",
    "赔案号": "claim_no",
    "坐席工号": "agent_id",
    "机构代码": "branch_code",
    "进线时间": "offered_ts",
    "应答时间": "answered_ts",
    "挂机时间": "ended_ts",
    "是否放弃": "abandoned",
    "话后处理时长": "wrap_up_seconds",
    "外呼结果": "outcome",
}

DIRECTIONS = ("呼入", "呼出")
CALL_TYPES = ("报案", "咨询", "投诉", "回访", "关怀", "营销")
QUEUES = ("CLAIM_REPORT", "INQUIRY", "COMPLAINT", "OUTBOUND")
OUTCOMES = ("接通", "无人接听", "占线", "空号", "拒访")

CONTRACT = SourceContract(
    source="call_logs",
    folder="calls",
    file_suffix=".csv",
    partitioning="daily",
    file_format="csv",
    encoding="gbk",
    key=("call_id",),
    header_map=HEADER_MAP,
    timestamp_format=CALL_TS_FORMAT,
    description="Inbound and outbound calls exported by the call-centre CTI (GBK, Chinese headers).",
    columns=(
        Column("call_id", "VARCHAR", required=True, pattern=r"^CA[0-9]{12}$"),
        Column("direction", "VARCHAR", required=True, codes=DIRECTIONS),
        Column("call_type", "VARCHAR", required=True, codes=CALL_TYPES),
        Column("queue", "VARCHAR", required=True, codes=QUEUES),
        Column("phone", "VARCHAR", pii=True, pattern=PHONE_PATTERN),
        Column("policy_no", "VARCHAR", pattern=POLICY_NO_PATTERN),
        Column("claim_no", "VARCHAR", pattern=CLAIM_NO_PATTERN),
        Column("agent_id", "VARCHAR", pattern=r"^A[0-9]{4}$"),
        Column("branch_code", "VARCHAR", required=True, codes=BRANCH_CODES, pattern=BRANCH_CODE_PATTERN),
        Column("offered_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("answered_ts", "TIMESTAMP", no_future=True, past_days=EVENT_PAST_DAYS),  # empty if not answered
        Column("ended_ts", "TIMESTAMP", required=True, no_future=True, past_days=EVENT_PAST_DAYS),
        Column("abandoned", "VARCHAR", required=True, codes=("是", "否")),
        Column("wrap_up_seconds", "INTEGER", min_value=0, max_value=7200),
        Column("outcome", "VARCHAR", codes=OUTCOMES),  # outbound only
    ),
    row_checks=(
        ("{answered_ts} < {offered_ts}", "ANSWERED_BEFORE_OFFERED",
         "'answered_ts ' || CAST({answered_ts} AS VARCHAR) || ' is before offered_ts ' || CAST({offered_ts} AS VARCHAR)"),
        ("{ended_ts} < {offered_ts}", "ENDED_BEFORE_OFFERED",
         "'ended_ts ' || CAST({ended_ts} AS VARCHAR) || ' is before offered_ts ' || CAST({offered_ts} AS VARCHAR)"),
        ("{abandoned} = '是' AND {answered_ts} IS NOT NULL", "ABANDONED_BUT_ANSWERED",
         "'an abandoned call (是否放弃 = 是) has an answer time ' || CAST({answered_ts} AS VARCHAR)"),
    ),
)

# ------------------------------------------------------------------------------------ reading

TRANSCODE_CHUNK_BYTES = 1 << 20


def transcode_gbk_to_utf8(src: Path, dst: Path, rel_path: str, chunk_bytes: int = TRANSCODE_CHUNK_BYTES) -> int:
    """Stream ``src`` (GBK) into ``dst`` (UTF-8, created 0600) in fixed-size chunks; returns bytes read.

    DuckDB's encodings extension is not available offline, so the CTI's GBK export is transcoded
    here with an incremental decoder (a character split across two chunks is carried over).
    A byte sequence that is not GBK raises ``InvalidGbk`` (the caller reads the file line by
    line then, quarantining only the lines with bad bytes); a file that is really UTF-8 (a common
    export mistake) is named as such.
    """
    decoder = codecs.getincrementaldecoder("gbk")(errors="strict")
    offset = 0
    with open(src, "rb") as fin, open_private_text(dst) as fout:
        while True:
            chunk = fin.read(chunk_bytes)
            final = not chunk
            pending = len(decoder.getstate()[0])  # bytes of a character split by the last chunk
            try:
                fout.write(decoder.decode(chunk, final=final))
            except UnicodeDecodeError as exc:
                # exc.start counts from the decoder's input: the pending bytes, then this chunk.
                position = offset - pending + exc.start
                if _looks_like_utf8(src):
                    raise FileUnreadable(
                        f"{rel_path}: not valid GBK at byte offset {max(position, 0)} — the file looks like "
                        "UTF-8 (the CTI export must be GBK-encoded)") from None
                raise InvalidGbk(max(position, 0)) from None
            if final:
                return offset
            offset += len(chunk)


class InvalidGbk(Exception):
    """A byte sequence that is not GBK at ``offset``: the file is read line by line instead."""


def _looks_like_utf8(path: Path, probe_bytes: int = 1 << 16) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(probe_bytes)
    if all(b < 0x80 for b in head):
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A cut multi-byte character at the probe's end is still UTF-8.
        return exc.start >= len(head) - 3


def check_not_utf8_header(path: Path, rel_path: str) -> None:
    """A UTF-8 file can decode as (garbage) GBK; its header then gives it away."""
    with open(path, "rb") as fh:
        first_line = fh.readline(1 << 16)
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    if any(name in text for name in HEADER_MAP):
        offset = next(i for i, b in enumerate(first_line) if b >= 0x80)
        raise FileUnreadable(
            f"{rel_path}: encoded as UTF-8, expected GBK (Chinese header bytes at byte offset {offset} "
            "are UTF-8)"
        )


def stage_files(con, files: list[LandingFile], table: str, workdir: Path) -> StageResult:
    """Transcode each GBK file to a UTF-8 temp file, then read them all with one read_csv; a file
    whose pre-scan shows a framing problem, or that holds bytes that are not GBK, is read line by
    line instead (``readers.stage_csv_careful``: a bad byte quarantines only its line)."""
    read_paths: dict[str, Path] = {}
    failures: dict[str, str] = {}
    careful: set[str] = set()
    prescans: dict[str, Prescan] = {}
    for f in files:
        if f.bytes == 0:
            continue  # stage_csv reports the empty file
        target = workdir / CONTRACT.folder / f"{f.partition}.utf8.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            check_not_utf8_header(f.path, f.rel_path)
            with open(f.path, "rb") as fh:
                prescans[f.rel_path] = scan = prescan(fh)
            if scan.problems or scan.empty:
                careful.add(f.rel_path)
                continue
            transcode_gbk_to_utf8(f.path, target, f.rel_path)
        except InvalidGbk:
            careful.add(f.rel_path)
            continue
        except FileUnreadable as exc:
            failures[f.rel_path] = str(exc)
            continue
        read_paths[f.rel_path] = target
    return stage_csv(con, CONTRACT, files, table, read_paths=read_paths, failures=failures,
                     careful=careful, prescans=prescans)
