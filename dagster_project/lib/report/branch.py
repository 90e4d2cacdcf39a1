"""One monthly page per branch, for its manager (docs/bi.md#branch-reports).

The page is built from the same ``ReportInput`` as the company report — the numbers read from the
published marts by ``marts.read_period`` — so a branch's figure on its page is the figure on the
company report's branch row, and the company column is the company report's. Only the branch's
comment topics are read here, from ``mart_verbatim_topics`` (the company report pools topics over
branches).

What the page holds: the branch against the company and its peers (the median of the other
branches, and the branch's rank among all branches where a direction is defined), its weakest
stage cells (ranked like the company report's, only among cells with enough responses), its
follow-up cases open past their deadline at month end (case key, reason, age — no personal data)
and the topics its customers wrote about most. The layout is the strict one of the mailed company
report (``mail_html.py``): tables, inline styles, PNG charts.
"""

from __future__ import annotations

import base64
import statistics
from dataclasses import dataclass

import duckdb

from dagster_project.lib.report import charts
from dagster_project.lib.report.html import (
    REASON_LABELS,
    ReportInput,
    _change_badge,
    _num,
    branch_text,
    esc,
    rankable_cells,
    stage_text,
    worst_cells,
)
from dagster_project.lib.report.mail_html import MailBody, _Builder, file_safe, grid
from dagster_project.lib.report.marts import table_columns
from dagster_project.lib.report.metrics import (
    COMPANY,
    MIN_SAMPLE_SIZE,
    STAGE_LABELS,
    KpiRow,
    format_percent,
    format_value,
    metric_spec,
    parse_period,
)
from dagster_project.lib.report.voice import TopicRow

BRANCH_METRICS = (*(f"csat.{s}" for s in STAGE_LABELS), "valid_complaint_rate", "complaints_per_10k_policies",
                  "complaint_within_deadline_share", "complaint_handling_days_p90", "winback_rate",
                  "service_level_20s", "abandon_rate", "manual_answer_rate", "claim_closure_rate",
                  "claims_paid_within_10d_share", "followup_overdue_share", "first_contact_resolution",
                  "complaint_index")
WEAKEST_CELLS = 3
TOP_TOPICS = 5
MAX_CASES = 50


@dataclass(frozen=True)
class BranchFigure:
    metric: str
    own: KpiRow
    company: KpiRow | None
    peer_median: float | None  # the other branches' values
    rank: int | None  # 1 = best among the branches with a value; None where "better" is undefined
    ranked: int  # how many branches have a value


def branch_figures(data: ReportInput, branch: str) -> list[BranchFigure]:
    out = []
    for metric in BRANCH_METRICS:
        own = data.value(branch, metric)
        if own is None or own.value is None:
            continue
        values = {r.branch_code: r.value for r in data.per_branch(metric) if r.value is not None}
        peers = [v for b, v in values.items() if b != branch]
        better = metric_spec(metric).higher_is_better
        rank = None
        if better is not None:
            # ties share the better rank: a branch is not ranked below another with the same value
            rank = 1 + sum(1 for v in values.values() if (v > own.value if better else v < own.value))
        out.append(BranchFigure(metric, own, data.value(COMPANY, metric),
                                statistics.median(peers) if peers else None, rank, len(values)))
    return out


def read_branch_topics(con: duckdb.DuckDBPyConnection, period: str, n: int = TOP_TOPICS) -> dict[str, list[TopicRow]]:
    """The most mentioned comment topics of each branch in the month (all stages), from the counts."""
    if not table_columns(con, "mart_verbatim_topics"):
        return {}
    rows = con.execute("""
        select branch_code, stage, topic_code, any_value(topic_label_zh), any_value(topic_label_en),
               sum(mentions), sum(commented), sum(satisfied_mentioning), sum(responses_not_mentioning),
               sum(satisfied_not_mentioning)
        from marts.mart_verbatim_topics
        where month = ?
        group by branch_code, stage, topic_code
        having sum(mentions) > 0
        order by branch_code, sum(mentions) desc, stage, topic_code""", [parse_period(period)]).fetchall()
    out: dict[str, list[TopicRow]] = {}
    for branch, stage, code, zh, en, x, n_commented, sat_x, rest, sat_rest in rows:
        topics = out.setdefault(str(branch), [])
        if len(topics) < n:
            topics.append(TopicRow(str(stage), str(code), str(zh), str(en), int(x), int(n_commented),
                                      sat_x / x if x else None, sat_rest / rest if rest else None))
    return out


def render_branch_page(data: ReportInput, branch: str, topics: list[TopicRow],
                       attachment_name: str) -> MailBody:
    b = _Builder(f"kpi-{data.period}-{file_safe(branch)}")
    name = branch_text(branch)

    figures = branch_figures(data, branch)
    b.h2(f"1. 本机构与全公司、同业机构 {esc(name)} against the company and its peers")
    b.p("Peers: the median of the other branches this month. Rank: 1 = best among the branches with a value "
        "(not ranked where higher is neither better nor worse). Change: against last month, marked only when "
        "statistically significant.")
    if figures:
        rows = []
        for f in figures:
            spec = metric_spec(f.metric)
            n = "" if f.own.denominator is None else f"{f.own.denominator:,.0f}"
            rows.append([f"{esc(spec.label_zh)} <small>{esc(spec.label_en)}</small>",
                         _num(f.own, f.metric, branch), esc(n),
                         _num(f.company, f.metric, COMPANY) if f.company else "–",
                         esc(format_value(f.metric, f.peer_median)),
                         "–" if f.rank is None else f"{f.rank} / {f.ranked}",
                         _change_badge(data.changes.get((branch, f.metric)))])
        b.block(grid(["指标 KPI", "本机构 Branch", "n", "全公司 Company", "同业中位数 Peer median",
                      "排名 Rank", "环比 Change"], rows))
    own = {c.stage: c.csat for c in data.satisfaction if c.branch_code == branch}
    company = {s: (r.value if (r := data.value(COMPANY, f"csat.{s}")) else None) for s in STAGE_LABELS}
    if own:
        b.block(b.img(charts.stage_comparison_png(own, company, branch=branch)))
    per_10k = data.per_branch("complaints_per_10k_policies")
    if per_10k:
        b.block(b.img(charts.hbar_png([(r.branch_code, r.value) for r in per_10k], name="peers-complaints",
                                      title="Complaints per 10k policies, all branches", highlight=branch,
                                      value_format=lambda v: f"{v:.2f}")))

    cells = [c for c in data.satisfaction if c.branch_code == branch]
    rolling = [c for c in data.satisfaction_rolling if c.branch_code == branch]
    weakest = worst_cells(cells, WEAKEST_CELLS, rolling)
    b.h2("2. 最薄弱环节 Weakest stage cells")
    if weakest:
        b.p(f"Ranked by the upper end of the 95% interval, among cells with at least {MIN_SAMPLE_SIZE} responses "
            "(a month's cell with fewer is ranked on the months before it pooled, and not at all if still short).")
        b.block(grid(["环节 Stage", "满意度 CSAT", "95% 区间 interval", "满意/回复 satisfied/responses",
                      "全公司 Company", "显著低于 Significantly below"],
                     [[esc(stage_text(c.stage)),
                       _num(KpiRow(branch, f"csat.{c.stage}", c.csat), f"csat.{c.stage}", branch),
                       esc(f"{format_percent(c.wilson_low)} – {format_percent(c.wilson_high)}"), f"{c.satisfied:,} / {c.responses:,}",
                       esc(format_percent(company.get(c.stage))), "是 yes" if c.significantly_below else "否 no"]
                      for c in weakest]))
        b.block(b.img(charts.interval_png(weakest, name="weakest-cells", title=f"{branch}: weakest stage cells")))
    else:
        unranked = len(cells) - len(rankable_cells(cells, rolling))
        b.p(f"No stage cell has {MIN_SAMPLE_SIZE} responses this month, even pooled over the months before "
            f"({unranked} cells too small to rank).")

    cases = sorted((c for c in data.overdue_cases if c.branch_code == branch),
                   key=lambda c: (-c.age_days, c.case_key))
    b.h2(f"3. 逾期未结回访 Follow-up cases open past their deadline at month end: {len(cases):,}")
    if cases:
        b.block(grid(["个案号 Case key", "原因 Reason", "环节 Stage", "开案 Opened", "到期 Due", "案龄(天) Age, days",
                      "升级 Level"],
                     [[esc(c.case_key), esc(REASON_LABELS.get(c.reason, c.reason)),
                       esc(stage_text(c.stage)) if c.stage else "–", esc(c.opened), esc(c.due),
                       f"{c.age_days:.1f}", str(c.escalation_level)] for c in cases[:MAX_CASES]]))
        if len(cases) > MAX_CASES:
            b.p(f"… {len(cases) - MAX_CASES:,} more in marts.fct_followup_case.")
    else:
        b.p("None: every case due by month end was followed up.")

    b.h2("4. 客户原声 What this branch's customers wrote about most")
    if topics:
        b.block(grid(["环节 Stage", "主题 Topic", "提及/评论 mentions/comments", "满意度 CSAT mentioning vs not"],
                     [[esc(stage_text(t.stage)), f"{esc(t.label_zh)} <small>{esc(t.label_en)}</small>",
                       f"{t.mentions:,} / {t.commented:,}",
                       esc(f"{format_percent(t.csat_mentioning)} vs {format_percent(t.csat_not_mentioning)}")] for t in topics]))
    else:
        b.p("No comment mentioned a topic of the dictionary this month.")

    b.p(f"The branch's numbers with their numerators and denominators are in the attached {esc(attachment_name)}; "
        "they are the numbers of the company report (marts.kpi_snapshots).")
    meta = (f"修订 Revision {data.revision} · recorded {esc(f'{data.recorded_at:%Y-%m-%d %H:%M}')} (Asia/Shanghai)"
            + (f" · 数据版本 published version {esc(data.source_version)}" if data.source_version else ""))
    return MailBody(b.page(f"机构月报 Branch report — {esc(name)} — {esc(data.period)}", meta), tuple(b.images))


def standalone_html(body: MailBody) -> str:
    """The page for a browser: the cid: references replaced by the images as data: URIs (mail
    clients often block data: URIs, browsers show them; the mailed copy keeps cid:)."""
    html = body.html
    for image in body.images:
        uri = "data:image/png;base64," + base64.b64encode(image.chart.png).decode("ascii")
        html = html.replace(f'src="cid:{esc(image.content_id)}"', f'src="{uri}"')
    return html
