"""The monthly KPI report as one self-contained HTML file (inline CSS and SVG, no external URL).

Written for a manager: the headline first in plain language, then one section per question
(where is satisfaction low, are complaints handled in time, do complainants stay, is the phone
answered, who needs underwriting attention). Labels are Chinese and English. Every value that comes
from data (branch codes and names, stage codes, reasons, version ids) passes through ``esc`` — the
report is opened in mail clients and browsers, so a ``<script>`` in the data must stay text.

Each number shown for the company carries ``data-metric`` / ``data-branch`` / ``data-value``
attributes with the unrounded value, so tests (and curious analysts) can match it to the marts.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass, field
from datetime import datetime

from dagster_project.lib.reference import BRANCHES
from dagster_project.lib.report.marts import Headline, OverdueCase, RecoveryFigure, SatisfactionCell, format_headline
from dagster_project.lib.report.voice import VoiceData, render_voice_sections
from dagster_project.lib.report.metrics import (
    COMPANY,
    COMPANY_LABEL,
    COMPLAINT_DEADLINE_DAYS,
    MIN_SAMPLE_SIZE,
    ROLLING_MONTHS,
    SEGMENT_LABELS,
    SIGNIFICANCE_LEVEL,
    STAGE_LABELS,
    Change,
    KpiRow,
    format_delta,
    format_interval,
    format_p_value,
    format_percent,
    format_value,
    interval_of,
    metric_spec,
    wilson_interval,
)

_BRANCH_NAMES = {b.code: (b.name_zh, b.name_en) for b in BRANCHES}
WORST_CELLS = 5


def esc(value) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def branch_label(code: str) -> tuple[str, str]:
    if code == COMPANY:
        return COMPANY_LABEL
    return _BRANCH_NAMES.get(code, (code, code))


def branch_text(code: str) -> str:
    zh, en = branch_label(code)
    return f"{zh} {en}" if zh != en else zh


def stage_text(stage: str) -> str:
    zh, en = STAGE_LABELS.get(stage, (stage, stage))
    return f"{zh} {en}" if zh != en else zh


@dataclass
class ReportInput:
    period: str
    previous_period: str
    revision: int
    recorded_at: datetime
    revision_reason: str | None
    rows: list[KpiRow]
    changes: dict[tuple[str, str], Change]
    satisfaction: list[SatisfactionCell]
    source_version: str | None = None
    missing: list[str] = field(default_factory=list)
    # the satisfaction cells pooled over the rolling months ending with the period (low-sample
    # monthly cells are ranked on these instead)
    satisfaction_rolling: list[SatisfactionCell] = field(default_factory=list)
    # company-wide figures over the 12 months ending with the period (the CLI summary's headlines)
    headlines: list[Headline] = field(default_factory=list)
    # follow-up cases open past their deadline at the end of the period, and the recovery of
    # followed-up detractors (section 7)
    overdue_cases: list[OverdueCase] = field(default_factory=list)
    recovery: list[RecoveryFigure] = field(default_factory=list)
    # topics, key drivers and control limits of the month (lib/report/voice.py)
    voice: VoiceData | None = None

    def value(self, branch: str, metric: str) -> KpiRow | None:
        return next((r for r in self.rows if r.branch_code == branch and r.metric == metric), None)

    def branches(self) -> list[str]:
        return sorted({r.branch_code for r in self.rows if r.branch_code != COMPANY})

    def per_branch(self, metric: str) -> list[KpiRow]:
        return [r for r in self.rows if r.metric == metric and r.branch_code != COMPANY]


# --------------------------------------------------------------------------------------------------
# small SVG charts (inline; no xmlns needed inside HTML5, so no URL appears at all)


def _csat_colour(csat: float | None) -> str:
    """Red (≤ 60%) through amber (80%) to green (≥ 95%)."""
    if csat is None:
        return "#e0e0e0"
    t = min(1.0, max(0.0, (csat - 0.60) / 0.35))
    stops = [(0.0, (198, 40, 40)), (0.57, (249, 168, 37)), (1.0, (46, 125, 50))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            r, g, b = (round(a + (b_ - a) * f) for a, b_ in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#2e7d32"


def heatmap_svg(cells: list[SatisfactionCell], branches: list[str], stages: list[str]) -> str:
    by_key = {(c.branch_code, c.stage): c for c in cells}
    left, top, w, h = 190, 44, 96, 24
    width, height = left + w * len(stages) + 10, top + h * len(branches) + 10
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'role="img" aria-label="CSAT heat map">',
             '<defs><pattern id="lowsample" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" '
             'stroke-width="2" stroke-opacity="0.7"/></pattern></defs>']
    for j, stage in enumerate(stages):
        zh, en = STAGE_LABELS.get(stage, (stage, stage))
        x = left + j * w + w / 2
        parts.append(f'<text x="{x}" y="16" text-anchor="middle" class="lbl">{esc(zh)}</text>'
                     f'<text x="{x}" y="32" text-anchor="middle" class="lbl sm">{esc(en)}</text>')
    for i, branch in enumerate(branches):
        y = top + i * h
        parts.append(f'<text x="{left - 6}" y="{y + h / 2 + 4}" text-anchor="end" class="lbl">'
                     f'{esc(branch_text(branch))}</text>')
        for j, stage in enumerate(stages):
            cell = by_key.get((branch, stage))
            x = left + j * w
            csat = cell.csat if cell else None
            title = "no responses" if cell is None else (
                f"{branch_text(branch)} · {stage_text(stage)}: {format_percent(csat)} "
                f"({cell.satisfied}/{cell.responses})" + (" — low sample" if cell.low_sample else ""))
            stroke = ' stroke="#000" stroke-width="2.5"' if cell and cell.significantly_below else \
                ' stroke="#fff" stroke-width="1"'
            parts.append(f'<g><title>{esc(title)}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" '
                         f'fill="{_csat_colour(csat)}"{stroke}/>')
            if cell and cell.low_sample:
                parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="url(#lowsample)"/>')
            label = "–" if csat is None else f"{csat * 100:.1f}%" + ("†" if cell.low_sample else "")
            parts.append(f'<text x="{x + w / 2}" y="{y + h / 2 + 4}" text-anchor="middle" '
                         f'class="cell">{esc(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def hbar_svg(items: list[tuple[str, float | None, str]], *, reference: float | None = None,
             reference_label: str = "", max_value: float | None = None) -> str:
    """Horizontal bars: (label, value, formatted value). An optional dashed reference line."""
    values = [v for _, v, _ in items if v is not None]
    top_value = max([*values, reference or 0.0, max_value or 0.0, 1e-9])
    left, bar_w, h = 190, 320, 20
    width, height = left + bar_w + 80, 26 + h * len(items) + 6
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value, shown) in enumerate(items):
        y = 22 + i * h
        over = reference is not None and value is not None and value > reference
        length = 0 if value is None else bar_w * value / top_value
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" class="lbl">{esc(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{h - 6}" '
                     f'class="{"bar over" if over else "bar"}"/>'
                     f'<text x="{left + length + 4:.1f}" y="{y + 14}" class="lbl sm">{esc(shown)}</text>')
    if reference is not None:
        x = left + bar_w * reference / top_value
        parts.append(f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{height - 4}" class="refline"/>'
                     f'<text x="{x:.1f}" y="12" text-anchor="middle" class="lbl sm">{esc(reference_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_svg(cells: list[SatisfactionCell]) -> str:
    """Each cell's CSAT as a dot with its 95% Wilson interval, on a 0–100% axis."""
    left, axis_w, h = 300, 300, 24
    width, height = left + axis_w + 20, 30 + h * len(cells)
    parts = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for tick in range(0, 101, 20):
        x = left + axis_w * tick / 100
        parts.append(f'<line x1="{x}" y1="14" x2="{x}" y2="{height}" class="grid"/>'
                     f'<text x="{x}" y="11" text-anchor="middle" class="lbl sm">{tick}%</text>')
    for i, c in enumerate(cells):
        y = 30 + i * h + h / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" class="lbl">'
                     f'{esc(branch_text(c.branch_code))} · {esc(stage_text(c.stage))}</text>')
        if c.wilson_low is not None and c.wilson_high is not None:
            x0, x1 = left + axis_w * c.wilson_low, left + axis_w * c.wilson_high
            parts.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" class="whisker"/>')
        if c.csat is not None:
            parts.append(f'<circle cx="{left + axis_w * c.csat:.1f}" cy="{y}" r="4" class="dot"/>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar_svg(shares: list[tuple[str, float]]) -> str:
    colours = ["#2e7d32", "#9ccc65", "#f9a825", "#c62828", "#777"]
    width, bar_w = 640, 600
    parts = [f'<svg class="chart" width="{width}" height="70" viewBox="0 0 {width} 70" role="img">']
    x = 10.0
    for i, (label, share) in enumerate(shares):
        seg_w = bar_w * share
        parts.append(f'<g><title>{esc(label)}: {share * 100:.1f}%</title>'
                     f'<rect x="{x:.1f}" y="8" width="{seg_w:.1f}" height="26" fill="{colours[i % 5]}"/></g>')
        if seg_w > 60:
            parts.append(f'<text x="{x + seg_w / 2:.1f}" y="26" text-anchor="middle" class="cell">'
                         f'{share * 100:.1f}%</text>')
        parts.append(f'<rect x="{10 + i * 150}" y="46" width="12" height="12" fill="{colours[i % 5]}"/>'
                     f'<text x="{26 + i * 150}" y="57" class="lbl sm">{esc(label)}</text>')
        x += seg_w
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------------
# text pieces


def _change_badge(change: Change | None) -> str:
    """Every change is shown; only significant ones are marked (arrow and colour)."""
    if change is None or change.delta is None:
        return '<span class="chg">–</span>'
    delta = esc(format_delta(change.metric, change.delta))
    tested = esc(format_p_value(change.p_value))
    if change.significant:
        arrow = "▲" if change.direction == "up" else "▼"
        return (f'<span class="chg sig {change.assessment}" title="{tested}">{arrow} {delta} '
                f'<small>({tested})</small></span>')
    return f'<span class="chg" title="not significant ({tested})">{delta}</span>'


def _num(row: KpiRow | None, metric: str, branch: str = COMPANY) -> str:
    value = row.value if row else None
    raw = "" if value is None else repr(float(value))
    return (f'<span class="num" data-metric="{esc(metric)}" data-branch="{esc(branch)}" '
            f'data-value="{esc(raw)}">{esc(format_value(metric, value))}</span>')


def _counts(row: KpiRow | None) -> str:
    if row is None or row.numerator is None or row.denominator is None:
        return ""
    interval = format_interval(row.metric, interval_of(row))
    immature = " · 未成熟 claims still open" if row.mature is False else ""
    return (f'<small class="n">{row.numerator:,.0f} / {row.denominator:,.0f}'
            f'{" · " + esc(interval) if interval else ""}{immature}</small>')


def _n_and_interval(row: KpiRow | None) -> str:
    """' (n = 1,234, 95% CI 81.2–84.0%)' for a headline number; empty when the row has no n."""
    if row is None or row.denominator is None:
        return ""
    interval = format_interval(row.metric, interval_of(row))
    n = f"n = {row.denominator:,.0f}"
    return esc(f" ({n}{', ' + interval if interval else ''})")


def _tile(data: ReportInput, metric: str) -> str:
    spec = metric_spec(metric)
    row = data.value(COMPANY, metric)
    if row is None:
        return ""
    return (f'<div class="tile"><div class="tl">{esc(spec.label_zh)}<br><small>{esc(spec.label_en)}</small>'
            f'</div><div class="tv">{_num(row, metric)}</div>{_counts(row)}'
            f'<div>{_change_badge(data.changes.get((COMPANY, metric)))}</div></div>')


def rankable_cells(cells: list[SatisfactionCell],
                   rolling: list[SatisfactionCell] | None = None) -> list[SatisfactionCell]:
    """The cells that may be ranked: a month's cell with at least MIN_SAMPLE_SIZE responses, else
    the same branch × stage pooled over the rolling months if that reaches the minimum. Cells below
    the minimum even when pooled are never ranked (docs/definitions.md#low-sample)."""
    pooled = {(c.branch_code, c.stage): c for c in (rolling or [])}
    out = []
    for c in cells:
        if c.csat is None:
            continue
        if c.responses >= MIN_SAMPLE_SIZE and not c.low_sample:
            out.append(c)
            continue
        p = pooled.get((c.branch_code, c.stage))
        if p is not None and p.csat is not None and p.responses >= MIN_SAMPLE_SIZE:
            out.append(p)
    return out


def worst_cells(cells: list[SatisfactionCell], n: int = WORST_CELLS,
                rolling: list[SatisfactionCell] | None = None) -> list[SatisfactionCell]:
    """Lowest first among the rankable cells (enough responses, or rolled up to enough): by the
    upper end of the 95% interval, so that a cell is named weakest only as far as its data show
    it, then by the raw CSAT."""
    ranked = rankable_cells(cells, rolling)
    return sorted(ranked, key=lambda c: (c.wilson_high if c.wilson_high is not None else c.csat,
                                         c.csat, c.branch_code, c.stage))[:n]


def _basis(cell: SatisfactionCell, period: str) -> str:
    return "本月 month" if cell.months == 1 else f"{cell.months} 个月 months to {period}"


def headline_sentences(data: ReportInput) -> list[str]:
    """Plain-language bullet points (already HTML-escaped)."""
    out = []
    stages = [m for m in (f"csat.{s}" for s in STAGE_LABELS) if data.value(COMPANY, m)]
    if stages:
        parts = [f"{esc(STAGE_LABELS[m.split('.', 1)[1]][0])} {_num(data.value(COMPANY, m), m)}"
                 f"{_n_and_interval(data.value(COMPANY, m))}" for m in stages]
        out.append("客户满意度（4–5分占比）Share of customers satisfied (score 4–5): " + "，".join(parts) + "。")
    # The headline names a cell with enough responses to be credible (or rolled up to enough).
    worst = worst_cells(data.satisfaction, 1, data.satisfaction_rolling)
    if worst:
        c = worst[0]
        interval = "" if c.wilson_low is None else \
            f" (95% CI {c.wilson_low * 100:.1f}–{c.wilson_high * 100:.1f}%, n = {c.responses:,}, {_basis(c, data.period)})"
        out.append(f"最薄弱环节 Weakest branch–stage cell: <b>{esc(branch_text(c.branch_code))} · "
                   f"{esc(stage_text(c.stage))}</b>, {c.csat * 100:.1f}% satisfied{esc(interval)}.")
    elif data.satisfaction:
        out.append(f"最薄弱环节 Weakest branch–stage cell: none named — no cell has {MIN_SAMPLE_SIZE} responses, "
                   f"even over {ROLLING_MONTHS} months.")
    received = data.value(COMPANY, "complaints_received")
    if received:
        text = f"投诉 Complaints: {_num(received, 'complaints_received')} received"
        for metric, words in (("valid_complaint_rate", "valid (有效)"),
                              ("complaints_per_10k_policies", "per 10k policies in force"),
                              ("complaint_within_deadline_share", "closed within the legal deadline")):
            if data.value(COMPANY, metric):
                text += (f"; {_num(data.value(COMPANY, metric), metric)} {words}"
                         f"{_n_and_interval(data.value(COMPANY, metric))}")
        late = [r for r in data.per_branch("complaint_handling_days_p90")
                if r.value is not None and r.value > COMPLAINT_DEADLINE_DAYS]
        if data.per_branch("complaint_handling_days_p90"):
            names = "，".join(esc(branch_label(r.branch_code)[0]) for r in late) or "none 无"
            text += (f". Branches whose slowest 10% of complaints took longer than {COMPLAINT_DEADLINE_DAYS} days "
                     f"(p90 &gt; {COMPLAINT_DEADLINE_DAYS}): {len(late)} — {names}")
        out.append(text + ".")
    if data.value(COMPANY, "service_level_20s") or data.value(COMPANY, "abandon_rate"):
        out.append(f"呼叫中心 Call centre: {_num(data.value(COMPANY, 'service_level_20s'), 'service_level_20s')}"
                   f"{_n_and_interval(data.value(COMPANY, 'service_level_20s'))} "
                   f"of calls answered by an agent within 20 seconds; "
                   f"{_num(data.value(COMPANY, 'abandon_rate'), 'abandon_rate')}"
                   f"{_n_and_interval(data.value(COMPANY, 'abandon_rate'))} hung up before an answer.")
    if data.value(COMPANY, "winback_rate"):
        out.append(f"挽回 Win-back: {_num(data.value(COMPANY, 'winback_rate'), 'winback_rate')}"
                   f"{_n_and_interval(data.value(COMPANY, 'winback_rate'))} of complainants "
                   "due for renewal renewed their policy.")
    paid10 = data.value(COMPANY, "claims_paid_within_10d_share")
    if paid10:
        note = (" — 未成熟 this month's claims are still open: the share will move and is not compared"
                if paid10.mature is False else "")
        out.append(f"理赔 Claims reported this month paid within 10 days of agreement (Insurance Law art. 23): "
                   f"{_num(paid10, 'claims_paid_within_10d_share')}{_n_and_interval(paid10)}{esc(note)}.")
    if data.value(COMPANY, "watchlist_customers"):
        out.append(f"核保关注 Underwriting watch list: "
                   f"{_num(data.value(COMPANY, 'watchlist_customers'), 'watchlist_customers')} customers.")
    overdue = data.value(COMPANY, "followup_overdue_share")
    if overdue:
        fcr = data.value(COMPANY, "first_contact_resolution")
        out.append(f"回访 Follow-up: {_num(overdue, 'followup_overdue_share')}{_n_and_interval(overdue)} of the "
                   f"follow-up cases opened this month missed their deadline; {len(data.overdue_cases):,} cases are "
                   "open past it at month end"
                   + (f"; first-contact resolution {_num(fcr, 'first_contact_resolution')}{_n_and_interval(fcr)}"
                      if fcr else "") + ".")
    significant = [c for c in data.changes.values() if c.branch_code == COMPANY and c.significant]
    if significant:
        items = ", ".join(f"{esc(metric_spec(c.metric).label_en)} {esc(format_delta(c.metric, c.delta))}"
                          for c in significant)
        out.append(f"与上月相比显著变化 Significant changes vs {esc(data.previous_period)}: {items}.")
    else:
        out.append(f"与上月相比无统计显著变化 No statistically significant company-wide change vs "
                   f"{esc(data.previous_period)}.")
    return out


def _branch_table(data: ReportInput, metrics: list[str]) -> str:
    head = "".join(f"<th>{esc(metric_spec(m).label_zh)}<br><small>{esc(metric_spec(m).label_en)}</small></th>"
                   for m in metrics)
    body = []
    for branch in [*data.branches(), COMPANY]:
        cells = []
        for m in metrics:
            row = data.value(branch, m)
            cells.append(f"<td>{_num(row, m, branch)} {_change_badge(data.changes.get((branch, m)))}</td>")
        cls = ' class="total"' if branch == COMPANY else ""
        body.append(f"<tr{cls}><th>{esc(branch_text(branch))}</th>{''.join(cells)}</tr>")
    return (f'<table class="grid"><thead><tr><th>机构 Branch</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


_CSS = """
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #1f4e79;padding-bottom:3px;margin-top:28px}
.meta{color:#555;font-size:13px}.notice{background:#fff3cd;border:1px solid #e0c060;padding:8px;margin:10px 0}
ul.headline li{margin:4px 0;line-height:1.45}
.tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{border:1px solid #ccd;border-radius:4px;padding:8px;width:160px}
.tl{font-size:12px;color:#444}.tv{font-size:22px;font-weight:bold;margin:4px 0}.n{color:#777}
.chg{font-size:12px;color:#555}.chg.sig{font-weight:bold}.chg.better{color:#2e7d32}.chg.worse{color:#c62828}
.chg.neutral{color:#1f4e79}table.grid{border-collapse:collapse;font-size:12px;margin:6px 0}
table.grid td,table.grid th{border:1px solid #ddd;padding:3px 6px;text-align:right}
table.grid th:first-child{text-align:left}tr.total{background:#eef3f8;font-weight:bold}
svg.chart{display:block;margin:6px 0}.lbl{font-size:11px;fill:#222}.sm{font-size:10px;fill:#555}
.cell{font-size:11px;fill:#fff;font-weight:bold}.bar{fill:#4f81bd}.bar.over{fill:#c62828}
.refline{stroke:#c62828;stroke-dasharray:4 3;stroke-width:1.5}.grid{stroke:#e5e5e5}
.whisker{stroke:#1f4e79;stroke-width:2}.dot{fill:#c62828}.foot{color:#666;font-size:12px;margin-top:24px}
"""


def render_report(data: ReportInput) -> str:
    sat_branches = sorted({c.branch_code for c in data.satisfaction})
    stages = [s for s in STAGE_LABELS if any(c.stage == s for c in data.satisfaction)]
    stages += sorted({c.stage for c in data.satisfaction} - set(stages))
    sections: list[str] = []

    sections.append('<h2>要点 Headline</h2><ul class="headline">'
                    + "".join(f"<li>{s}</li>" for s in headline_sentences(data)) + "</ul>")
    if data.headlines:
        rows = "".join(
            f"<tr><th>{esc(h.label)}</th>" + "".join(f"<td>{esc(v)}</td>" for v in format_headline(h)) + "</tr>"
            for h in data.headlines)
        sections.append("<h3>近12个月 The last 12 months (company-wide, pooled)</h3>"
                        '<table class="grid"><thead><tr><th>指标 KPI</th><th>值 Value</th><th>n</th>'
                        "<th>95% 区间 interval</th><th>月份 Months</th></tr></thead>"
                        f"<tbody>{rows}</tbody></table>")
    tile_metrics = [*(f"csat.{s}" for s in STAGE_LABELS), "valid_complaint_rate", "complaints_per_10k_policies",
                    "complaint_within_deadline_share", "winback_rate", "service_level_20s", "abandon_rate",
                    "manual_answer_rate", "claim_closure_rate", "claims_paid_within_10d_share", "watchlist_customers"]
    sections.append('<div class="tiles">' + "".join(_tile(data, m) for m in tile_metrics) + "</div>")

    # 1. satisfaction
    sections.append("<h2>1. 各机构各环节满意度 Satisfaction by branch and stage</h2>"
                    f"<p>Share of survey responses scoring 4 or 5. † hatched: fewer than {MIN_SAMPLE_SIZE} responses "
                    "(low sample). Black border: significantly below the company rate.</p>"
                    + heatmap_svg(data.satisfaction, sat_branches, stages))
    worst = worst_cells(data.satisfaction, rolling=data.satisfaction_rolling)
    if worst:
        rows = "".join(
            f"<tr><th>{esc(branch_text(c.branch_code))}</th><td>{esc(stage_text(c.stage))}</td>"
            f"<td>{_num(KpiRow(c.branch_code, f'csat.{c.stage}', c.csat), f'csat.{c.stage}', c.branch_code)}</td>"
            f"<td>{esc(format_percent(c.wilson_low))} – {esc(format_percent(c.wilson_high))}</td>"
            f"<td>{c.satisfied:,} / {c.responses:,}</td><td>{esc(_basis(c, data.period))}</td></tr>"
            for c in worst)
        sections.append("<h3>最差五个机构-环节 The five weakest branch–stage cells</h3>"
                        f"<p>Ranked by the upper end of the 95% interval, among cells with at least {MIN_SAMPLE_SIZE} "
                        f"responses; a cell with fewer is ranked on the {ROLLING_MONTHS} months ending this month, "
                        "and not at all if those still fall short.</p>"
                        '<table class="grid"><thead><tr><th>机构 Branch</th><th>环节 Stage</th><th>满意度 CSAT</th>'
                        "<th>95% Wilson 区间 interval</th><th>满意/回复 satisfied/responses</th>"
                        f"<th>口径 Basis</th></tr></thead><tbody>{rows}</tbody></table>"
                        + interval_svg(worst))

    # 2. complaints
    p90 = data.per_branch("complaint_handling_days_p90")
    if p90:
        items = [(branch_text(r.branch_code), r.value, format_value(r.metric, r.value) + " d") for r in p90]
        sections.append(f"<h2>2. 投诉处理 Complaint handling</h2><p>Days from receipt to closure for the slowest "
                        f"10% of complaints closed this month (p90), per branch. Red: above the "
                        f"{COMPLAINT_DEADLINE_DAYS}-day legal deadline line.</p>"
                        + hbar_svg(items, reference=COMPLAINT_DEADLINE_DAYS,
                                   reference_label=f"{COMPLAINT_DEADLINE_DAYS} 天 days"))
    complaint_metrics = [m for m in ("complaints_received", "valid_complaint_rate", "complaints_per_10k_policies",
                                     "complaint_handling_days_p90", "complaint_within_deadline_share")
                         if data.per_branch(m)]
    if complaint_metrics:
        sections.append("<h3>有效投诉率与万张保单投诉量 Valid-complaint rate and complaints per 10k policies</h3>"
                        + _branch_table(data, complaint_metrics))

    # 3. win-back
    winback_metrics = [m for m in ("winback_rate", "renewal_lift") if data.per_branch(m)]
    if winback_metrics:
        sections.append("<h2>3. 投诉挽回 Win-back after complaints</h2><p>Win-back rate: complainants due for "
                        "renewal who renewed. Renewal lift: compared with non-complainants of the same branch "
                        "and line.</p>" + _branch_table(data, winback_metrics))

    # 4. call centre
    call_metrics = [m for m in ("service_level_20s", "abandon_rate", "manual_answer_rate") if data.per_branch(m)]
    if call_metrics:
        sl = data.per_branch("service_level_20s")
        chart = hbar_svg([(branch_text(r.branch_code), r.value, format_value(r.metric, r.value)) for r in sl],
                         max_value=1.0) if sl else ""
        sections.append("<h2>4. 呼叫中心 Call centre</h2><p>Service level: calls answered by an agent within "
                        "20 seconds. Abandon rate: callers who hung up before an answer.</p>"
                        + chart + _branch_table(data, call_metrics))

    # 5. customers
    seg_rows = [data.value(COMPANY, f"segment_share.{s}") for s in SEGMENT_LABELS]
    if any(seg_rows):
        shares = [(f"{zh} {en}", r.value or 0.0) for (zh, en), r in zip(SEGMENT_LABELS.values(), seg_rows) if r]
        watch = data.value(COMPANY, "watchlist_customers")
        sections.append("<h2>5. 客户分群与核保关注 Customer segments and underwriting watch list</h2>"
                        "<p>Customer mix by segment (as of the last day of the data).</p>"
                        + stacked_bar_svg(shares)
                        + (f"<p>核保关注名单 Underwriting watch list: {_num(watch, 'watchlist_customers')} "
                           "high-risk or sub-healthy customers with a renewal due.</p>" if watch else "")
                        + _branch_table(data, [m for m in ("watchlist_customers",
                                                           *(f"segment_share.{s}" for s in SEGMENT_LABELS))
                                               if data.per_branch(m)]))

    # 6. month over month
    immature = sorted({c.metric for c in data.changes.values() if c.immature and c.branch_code == COMPANY})
    changes = sorted((c for c in data.changes.values() if c.delta is not None),
                     key=lambda c: (not c.significant, c.branch_code != COMPANY, c.p_value or 1.0))
    shown = [c for c in changes if c.branch_code == COMPANY or c.significant]
    if shown:
        rows = "".join(
            f"<tr><th>{esc(branch_text(c.branch_code))}</th><td>{esc(metric_spec(c.metric).label_zh)} "
            f"<small>{esc(metric_spec(c.metric).label_en)}</small></td>"
            f"<td>{esc(format_value(c.metric, c.previous))}</td>"
            f"<td>{_num(KpiRow(c.branch_code, c.metric, c.current), c.metric, c.branch_code)}</td>"
            f"<td>{_change_badge(c)}</td><td>{esc(format_p_value(c.p_value))}</td></tr>" for c in shown)
        sections.append(f"<h2>6. 环比变化 Month-over-month changes ({esc(data.previous_period)} → "
                        f"{esc(data.period)})</h2><p>Company-wide changes, and branch changes that are "
                        f"statistically significant (rates: two-proportion z-test; complaints per 10k: Poisson rate "
                        f"test; false-discovery rate {SIGNIFICANCE_LEVEL:.0%} over all tests of this report "
                        "(Benjamini–Hochberg), so a change is not marked just because many were tested; "
                        "percentiles and lifts are not tested). "
                        "▲/▼ marks a significant change; green is better, red is worse."
                        + (" Not compared, because a month's claims are still open (immature): "
                           + esc(", ".join(metric_spec(m).label_en for m in immature)) + "." if immature else "")
                        + "</p>"
                        '<table class="grid"><thead><tr><th>机构 Branch</th><th>指标 Metric</th><th>上月 Previous</th>'
                        f"<th>本月 Current</th><th>变化 Change</th><th>检验 Test</th></tr></thead><tbody>{rows}"
                        "</tbody></table>")

    closing_loop = followup_section(data)
    if closing_loop:
        sections.append(closing_loop)
    if data.voice is not None:
        # numbered after the closing-the-loop section when the report has one
        sections.extend(render_voice_sections(data.voice, esc=esc, branch_text=branch_text,
                                              first_number=8 if closing_loop else 7))

    notice = ""
    if data.revision > 1:
        notice = (f'<div class="notice">修订 Revised figures (revision {data.revision}): '
                  f"{esc(data.revision_reason)}. Earlier revisions are kept unchanged in marts.kpi_snapshots.</div>")
    missing = ""
    if data.missing:
        missing = ("<p>未包含 Not included (not in the published file): "
                   + esc(", ".join(data.missing)) + "</p>")
    source = f" · 数据版本 published version {esc(data.source_version)}" if data.source_version else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>客服质量月报 Customer-service KPI snapshot {esc(data.period)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>客服质量月报 Customer-service KPI snapshot — {esc(data.period)}</h1>"
        f'<div class="meta">修订 Revision {data.revision} · recorded {esc(f"{data.recorded_at:%Y-%m-%d %H:%M}")} '
        f"(Asia/Shanghai){source}</div>{notice}"
        + "".join(sections)
        + f'<div class="foot">{missing}<p>Numbers come from the published marts; every rate is shown with its '
          "numerator and denominator in the attached CSV (marts.kpi_snapshots).</p></div></body></html>\n"
    )


MAX_CASES_PER_BRANCH = 20
REASON_LABELS = {"DETRACTOR": "差评 Detractor (score ≤ 2)", "COMPLAINT": "投诉 Complaint"}


def _rate_with_interval(x: float, n: float) -> str:
    if not n:
        return "–"
    interval = wilson_interval(x, n)
    return f"{x / n * 100:.1f}% ({x:,.0f}/{n:,.0f}, 95% CI {interval[0] * 100:.1f}–{interval[1] * 100:.1f}%)"


def followup_section(data: ReportInput) -> str:
    """Section 7: overdue share, FCR and complaint index per branch, the recovery of detractors
    followed up in time against those left waiting, and the overdue cases per branch (case key,
    reason, age; no personal data), oldest first."""
    metrics = [m for m in ("followup_overdue_share", "first_contact_resolution", "complaint_index")
               if data.per_branch(m)]
    if not (metrics or data.overdue_cases or data.recovery):
        return ""
    parts = ["<h2>7. 闭环管理 Closing the loop: follow-up, first-contact resolution, complaint index</h2>",
             "<p>A survey score of 2 or less, or an accepted complaint, opens a follow-up case (回访), due within "
             "24 working hours (09:00–18:00 on working days; complaints: 48 hours). Overdue share: cases opened "
             "this month that missed the deadline. First-contact resolution: answered calls that are not a repeat "
             "of the same caller or policy within 72 hours. Complaint index: the branch's share of complaints ÷ its "
             "share of premium (1.00 = in line with its premium).</p>"]
    if metrics:
        parts.append(_branch_table(data, metrics))
    if data.recovery:
        rows = "".join(
            f"<tr><th>{esc(r.label)}</th><td>{esc(_rate_with_interval(r.followed_x, r.followed_n))}</td>"
            f"<td>{esc(_rate_with_interval(r.not_followed_x, r.not_followed_n))}</td></tr>" for r in data.recovery)
        parts.append("<h3>挽回效果 Recovery of detractors, 12 months to this month</h3>"
                     '<table class="grid"><thead><tr><th>指标 Measure</th><th>按时回访 Followed up in time</th>'
                     f"<th>未按时回访 Left past the deadline</th></tr></thead><tbody>{rows}</tbody></table>")
    by_branch: dict[str, list[OverdueCase]] = {}
    for case in data.overdue_cases:
        by_branch.setdefault(case.branch_code, []).append(case)
    parts.append(f"<h3>逾期未结回访 Follow-up cases open past their deadline at month end: "
                 f"{len(data.overdue_cases):,}</h3>")
    for branch in sorted(by_branch, key=lambda b: (-len(by_branch[b]), b)):
        cases = sorted(by_branch[branch], key=lambda c: (-c.age_days, c.case_key))
        rows = "".join(
            f"<tr><th>{esc(c.case_key)}</th><td>{esc(REASON_LABELS.get(c.reason, c.reason))}"
            f"{esc(' · ' + stage_text(c.stage)) if c.stage else ''}</td><td>{esc(c.opened)}</td><td>{esc(c.due)}</td>"
            f"<td>{c.age_days:.1f}</td><td>{c.escalation_level}</td></tr>" for c in cases[:MAX_CASES_PER_BRANCH])
        more = (f"<p>… {len(cases) - MAX_CASES_PER_BRANCH:,} more in marts.fct_followup_case.</p>"
                if len(cases) > MAX_CASES_PER_BRANCH else "")
        parts.append(f"<h4>{esc(branch_text(branch))}: {len(cases):,}</h4>"
                     '<table class="grid"><thead><tr><th>个案号 Case key</th><th>原因 Reason</th><th>开案 Opened</th>'
                     "<th>到期 Due</th><th>案龄(天) Age, days</th><th>升级 Level</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>{more}")
    return "".join(parts)


def plain_text_summary(data: ReportInput) -> str:
    """The text/plain part of the e-mail for clients that do not show HTML."""
    lines = [f"客服质量月报 Customer-service KPI snapshot {data.period} (revision {data.revision})", ""]
    for row in data.rows:
        if row.branch_code == COMPANY:
            spec = metric_spec(row.metric)
            detail = ""
            if row.denominator is not None:
                interval = format_interval(row.metric, interval_of(row))
                detail = f" (n = {row.denominator:,.0f}{', ' + interval if interval else ''})"
            lines.append(f"- {spec.label_zh} {spec.label_en}: {format_value(row.metric, row.value)}{detail}")
    lines += ["", "The full report is the HTML part of this message; the snapshot rows are attached as CSV."]
    return "\n".join(lines)
