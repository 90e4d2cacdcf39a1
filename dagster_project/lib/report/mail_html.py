"""The HTML body of the report e-mails, in the form strict mail clients keep (docs/bi.md#the-monthly-e-mail).

Outlook's Word engine, Gmail and most webmail sanitisers drop ``<style>`` blocks, inline SVG and
flexbox, so the mailed body uses only what they all keep: nested ``<table>`` layout, ``style``
attributes on each element, and charts as ``<img src="cid:...">`` PNG parts of the same message
(``lib/report/charts.py``) with alt text that says what the chart shows. The browser-viewed report
(``lib/report/html.py``, with SVG and CSS) is attached to the message unchanged.

Pieces reused from ``html.py`` (headline sentences, change badges, numbers with ``data-*``
attributes) carry ``class`` attributes; ``inline_styles`` turns each into the equivalent
``style`` attribute, so nothing depends on a style sheet.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dagster_project.lib.report import charts
from dagster_project.lib.report.html import (
    ReportInput,
    _change_badge,
    _counts,
    _num,
    branch_text,
    esc,
    headline_sentences,
    stage_text,
    worst_cells,
)
from dagster_project.lib.report.marts import format_headline
from dagster_project.lib.report.metrics import (
    COMPANY,
    COMPLAINT_DEADLINE_DAYS,
    MIN_SAMPLE_SIZE,
    SEGMENT_LABELS,
    STAGE_LABELS,
    format_value,
    metric_spec,
)

FONT = "font-family:'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',Arial,sans-serif"
WIDTH = 680
TILES_PER_ROW = 3

# class (as html.py writes it) -> inline style; several classes on one element are combined
CLASS_STYLES = {
    "num": "font-weight:bold",
    "chg": "font-size:12px;color:#555555",
    "sig": "font-weight:bold",
    "better": "color:#2e7d32",
    "worse": "color:#c62828",
    "neutral": "color:#1f4e79",
    "n": "color:#777777",
}
TH = "border:1px solid #dddddd;padding:3px 6px;text-align:left;background:#f3f6f9;font-size:12px"
TD = "border:1px solid #dddddd;padding:3px 6px;text-align:right;font-size:12px"
TD_LEFT = "border:1px solid #dddddd;padding:3px 6px;text-align:left;font-size:12px"
H2 = f"{FONT};font-size:17px;color:#1f4e79;border-bottom:2px solid #1f4e79;padding:18px 0 3px 0;margin:0"
P = f"{FONT};font-size:13px;color:#333333;line-height:1.45;margin:6px 0"


def inline_styles(fragment: str) -> str:
    """Replace every ``class="a b"`` attribute with ``style="..."`` from CLASS_STYLES."""
    def repl(match: re.Match) -> str:
        styles = [CLASS_STYLES[c] for c in match.group(1).split() if c in CLASS_STYLES]
        return f' style="{";".join(styles)}"' if styles else ""
    return re.sub(r'\sclass="([^"]*)"', repl, fragment)


def file_safe(code: str) -> str:
    """A branch code as it may appear in a file name or a Content-ID: the code itself when it is
    plain letters and digits (every real branch code), else a digest — a code from the data must
    never name a folder (``/``) or break a header (``<>``)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,16}", code):
        return code
    return "b" + hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class InlineImage:
    """A chart and the Content-ID (without angle brackets) the HTML references as ``cid:...``."""

    content_id: str
    chart: charts.Chart


@dataclass(frozen=True)
class MailBody:
    html: str
    images: tuple[InlineImage, ...]


class _Builder:
    """Collects sections and the images they reference, so every ``cid:`` has its part."""

    def __init__(self, stem: str):
        self.stem = stem
        self.parts: list[str] = []
        self.images: list[InlineImage] = []

    def img(self, chart: charts.Chart) -> str:
        cid = f"{chart.name}.{self.stem}@cs-warehouse.local"
        self.images.append(InlineImage(cid, chart))
        return (f'<img src="cid:{esc(cid)}" alt="{esc(chart.alt)}" width="{min(chart.width, WIDTH)}" '
                f'style="display:block;border:0;max-width:100%;height:auto;margin:6px 0">')

    def h2(self, text: str) -> None:
        self.parts.append(f'<tr><td style="{H2}">{text}</td></tr>')

    def p(self, html: str) -> None:
        self.parts.append(f'<tr><td style="{P}">{html}</td></tr>')

    def block(self, html: str) -> None:
        self.parts.append(f'<tr><td style="{FONT}">{html}</td></tr>')

    def page(self, title: str, meta: str) -> str:
        return (
            "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head>"
            f'<body style="margin:0;padding:0;background:#ffffff">'
            f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
            f'style="border-collapse:collapse"><tr><td align="center" style="padding:12px">'
            f'<table role="presentation" width="{WIDTH}" cellpadding="0" cellspacing="0" border="0" '
            f'style="border-collapse:collapse;width:{WIDTH}px;color:#222222">'
            f'<tr><td style="{FONT};font-size:21px;font-weight:bold;padding:0 0 4px 0">{title}</td></tr>'
            f'<tr><td style="{FONT};font-size:12px;color:#555555">{meta}</td></tr>'
            + "".join(self.parts)
            + "</table></td></tr></table></body></html>\n")


def grid(head: list[str], rows: list[list[str]], *, total_last: bool = False) -> str:
    """A data table with inline borders; the first cell of a row is its label (left-aligned)."""
    out = ['<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
           'style="border-collapse:collapse;margin:6px 0"><tr>'
           + "".join(f'<th style="{TH}">{h}</th>' for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        bold = ";font-weight:bold;background:#eef3f8" if total_last and i == len(rows) - 1 else ""
        out.append("<tr>" + "".join(
            f'<td style="{(TD_LEFT if j == 0 else TD) + bold}">{cell}</td>' for j, cell in enumerate(row)) + "</tr>")
    out.append("</table>")
    return inline_styles("".join(out))


def tiles(items: list[tuple[str, str, str, str]]) -> str:
    """Headline tiles as table cells, TILES_PER_ROW a row: (label zh, label en, value html, detail html)."""
    rows = []
    for start in range(0, len(items), TILES_PER_ROW):
        chunk = items[start:start + TILES_PER_ROW]
        cells = "".join(
            f'<td width="{100 // TILES_PER_ROW}%" valign="top" style="border:1px solid #ccccdd;padding:8px;{FONT}">'
            f'<div style="font-size:12px;color:#444444">{esc(zh)}<br><small>{esc(en)}</small></div>'
            f'<div style="font-size:21px;font-weight:bold;margin:4px 0">{value}</div>'
            f'<div style="font-size:11px;color:#777777">{detail}</div></td>'
            for zh, en, value, detail in chunk)
        cells += '<td style="border:0"></td>' * (TILES_PER_ROW - len(chunk))
        rows.append(f"<tr>{cells}</tr>")
    return inline_styles('<table role="presentation" width="100%" cellpadding="0" cellspacing="6" border="0" '
                         'class="tiles">' + "".join(rows) + "</table>")


TILE_METRICS = (*(f"csat.{s}" for s in STAGE_LABELS), "valid_complaint_rate", "complaints_per_10k_policies",
                "complaint_within_deadline_share", "winback_rate", "service_level_20s", "abandon_rate",
                "manual_answer_rate", "claim_closure_rate", "claims_paid_within_10d_share", "watchlist_customers")


def company_tiles(data: ReportInput) -> list[tuple[str, str, str, str]]:
    out = []
    for metric in TILE_METRICS:
        row = data.value(COMPANY, metric)
        if row is None:
            continue
        spec = metric_spec(metric)
        out.append((spec.label_zh, spec.label_en, _num(row, metric),
                    _counts(row) + " " + _change_badge(data.changes.get((COMPANY, metric)))))
    return out


def _branch_rows(data: ReportInput, metrics: list[str]) -> list[list[str]]:
    rows = []
    for branch in [*data.branches(), COMPANY]:
        rows.append([esc(branch_text(branch))] + [
            f"{_num(data.value(branch, m), m, branch)} {_change_badge(data.changes.get((branch, m)))}"
            for m in metrics])
    return rows


def _metric_heads(metrics: list[str]) -> list[str]:
    return ["机构 Branch"] + [f"{esc(metric_spec(m).label_zh)}<br><small>{esc(metric_spec(m).label_en)}</small>"
                            for m in metrics]


def render_company_mail(data: ReportInput, attachment_name: str) -> MailBody:
    """The company report as a strict-client e-mail body: headline, tiles, the charts as PNG, the
    tables; the sections with many charts (control limits, drivers, topics) are in the attached
    report ``attachment_name``."""
    b = _Builder(f"kpi-{data.period}")
    b.h2("要点 Headline")
    b.block(inline_styles(f'<ul style="{P};padding-left:20px">'
                          + "".join(f'<li style="margin:4px 0">{s}</li>' for s in headline_sentences(data))
                          + "</ul>"))
    if data.headlines:
        b.p("近12个月 The last 12 months (company-wide, pooled)")
        b.block(grid(["指标 KPI", "值 Value", "n", "95% 区间 interval", "月份 Months"],
                     [[esc(h.label), *(esc(v) for v in format_headline(h))] for h in data.headlines]))
    items = company_tiles(data)
    if items:
        b.block(tiles(items))

    sat_branches = sorted({c.branch_code for c in data.satisfaction})
    stages = [s for s in STAGE_LABELS if any(c.stage == s for c in data.satisfaction)]
    if data.satisfaction:
        b.h2("1. 各机构各环节满意度 Satisfaction by branch and stage")
        b.p(f"Share of survey responses scoring 4 or 5. † fewer than {MIN_SAMPLE_SIZE} responses (low sample); "
            "heavy border: significantly below the company rate.")
        b.block(b.img(charts.heatmap_png(data.satisfaction, sat_branches, stages)))
        b.block(grid(["机构 Branch", *(esc(stage_text(s)) for s in stages)],
                     [[esc(branch_text(br)), *(_cell_text(data, br, s) for s in stages)] for br in sat_branches]))
    worst = worst_cells(data.satisfaction, rolling=data.satisfaction_rolling)
    if worst:
        b.p("最差五个机构-环节 The five weakest branch–stage cells (ranked by the upper end of the 95% interval)")
        b.block(b.img(charts.interval_png(worst, title="Weakest branch-stage cells")))

    p90 = data.per_branch("complaint_handling_days_p90")
    complaint_metrics = [m for m in ("complaints_received", "valid_complaint_rate", "complaints_per_10k_policies",
                                     "complaint_handling_days_p90", "complaint_within_deadline_share")
                         if data.per_branch(m)]
    if p90 or complaint_metrics:
        b.h2("2. 投诉处理 Complaint handling")
        if p90:
            b.block(b.img(charts.hbar_png(
                [(r.branch_code, r.value) for r in p90], name="complaint-p90",
                title="Complaint handling days, p90, per branch", value_format=lambda v: f"{v:.1f} d",
                reference=COMPLAINT_DEADLINE_DAYS, reference_label=f"{COMPLAINT_DEADLINE_DAYS}-day deadline")))
        if complaint_metrics:
            b.block(grid(_metric_heads(complaint_metrics), _branch_rows(data, complaint_metrics), total_last=True))

    winback = [m for m in ("winback_rate", "renewal_lift") if data.per_branch(m)]
    if winback:
        b.h2("3. 投诉挽回 Win-back after complaints")
        b.block(grid(_metric_heads(winback), _branch_rows(data, winback), total_last=True))

    calls = [m for m in ("service_level_20s", "abandon_rate", "manual_answer_rate") if data.per_branch(m)]
    if calls:
        b.h2("4. 呼叫中心 Call centre")
        sl = data.per_branch("service_level_20s")
        if sl:
            b.block(b.img(charts.hbar_png([(r.branch_code, r.value) for r in sl], name="service-level",
                                          title="Service level: answered within 20 s", max_value=1.0,
                                          value_format=lambda v: f"{v * 100:.1f}%")))
        b.block(grid(_metric_heads(calls), _branch_rows(data, calls), total_last=True))

    seg_rows = [(en, data.value(COMPANY, f"segment_share.{s}")) for s, (_zh, en) in SEGMENT_LABELS.items()]
    shares = [(en, r.value or 0.0) for en, r in seg_rows if r is not None]
    if shares:
        b.h2("5. 客户分群 Customer segments")
        b.block(b.img(charts.stacked_share_png(shares, title="Customer mix by segment")))

    b.p(f"完整报告 The full report (month-over-month tests, follow-up cases, what customers wrote, key drivers, "
        f"control limits) is attached as {esc(attachment_name)}; every number with its numerator and "
        "denominator is in the attached CSV.")
    meta = (f"修订 Revision {data.revision} · recorded {esc(f'{data.recorded_at:%Y-%m-%d %H:%M}')} (Asia/Shanghai)"
            + (f" · 数据版本 published version {esc(data.source_version)}" if data.source_version else ""))
    title = f"客服质量月报 Customer-service KPI snapshot — {esc(data.period)}"
    return MailBody(b.page(title, meta), tuple(b.images))


def _cell_text(data: ReportInput, branch: str, stage: str) -> str:
    cell = next((c for c in data.satisfaction if c.branch_code == branch and c.stage == stage), None)
    if cell is None or cell.csat is None:
        return "–"
    return esc(format_value(f"csat.{stage}", cell.csat) + ("†" if cell.low_sample else ""))
