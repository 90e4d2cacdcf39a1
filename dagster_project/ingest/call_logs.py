"""Call logs: ``calls/YYYY-MM-DD.csv``, **GBK**, Chinese column headers, as a Chinese CTI system
exports them; one row per call. Timestamps are written ``YYYY/MM/DD HH:MM:SS``.

The mapping from the CTI's Chinese headers to contract names lives here and nowhere else.
Values keep the CTI's Chinese codes in raw (呼入/呼出, 是/否, 报案 ...); staging decodes them.
"""

from __future__ import annotations

from dagster_project.ingest.contract import (
    BRANCH_CODE_PATTERN, CLAIM_NO_PATTERN, PHONE_PATTERN, POLICY_NO_PATTERN, Column, SourceContract,
)
from dagster_project.reference import BRANCH_CODES

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
        Column("offered_ts", "TIMESTAMP", required=True),
        Column("answered_ts", "TIMESTAMP"),  # empty if not answered
        Column("ended_ts", "TIMESTAMP", required=True),
        Column("abandoned", "VARCHAR", required=True, codes=("是", "否")),
        Column("wrap_up_seconds", "INTEGER", min_value=0, max_value=7200),
        Column("outcome", "VARCHAR", codes=OUTCOMES),  # outbound only
    ),
)
