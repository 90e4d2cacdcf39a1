"""The report sections on the customers' own words, the key drivers and the control limits.

Read from the published marts (``mart_verbatim_topics``, ``mart_emerging_terms``,
``mart_key_drivers``, ``mart_satisfaction_control_limits``, ``mart_complaint_control_limits``) and
rendered as HTML with inline SVG that reads without colour: shapes and line styles carry the
meaning (filled marks are flagged or significant, hollow ones are not; the 95% limits are dashed,
the 99.8% limits solid), and every text from the data passes through ``esc``. Methods:
docs/definitions.md#verbatim-topics, #key-drivers, #control-limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import duckdb

from dagster_project.lib.report.metrics import STAGE_LABELS, format_percent, wilson_interval

SCHEMA = "marts"
TOP_TOPICS = 3
TOP_TERMS = 5
VOICE_TABLES = ("mart_verbatim_topics", "mart_emerging_terms", "mart_key_drivers",
                "mart_satisfaction_control_limits", "mart_complaint_control_limits")


@dataclass(frozen=True)
class TopicRow:
    stage: str
    topic_code: str
    label_zh: str
    label_en: str
    mentions: int
    commented: int
    csat_mentioning: float | None
    csat_not_mentioning: float | None
    mean_sentiment: float | None = None  # the branch pages show the topics without it


@dataclass(frozen=True)
class TermRow:
    stage: str
    term: str
    comments_with_term: int
    comments: int
    share: float
    baseline_share: float | None
    rank: int


@dataclass(frozen=True)
class DriverRow:
    outcome: str
    stage: str
    status: str
    coefficient: float | None
    ci_low: float | None
    ci_high: float | None
    effect: float | None
    effect_low: float | None
    effect_high: float | None
    p_value_holm: float | None
    is_significant: bool
    rank: int | None
    n_observations: int | None
    model_fit: float | None


@dataclass(frozen=True)
class FunnelPoint:
    unit: str  # branch code
    stage: str | None  # None for complaint rates
    trials: float  # responses, or policies in force
    value: float  # csat, or complaints per 10k policies
    centre: float
    limit_95: tuple[float | None, float | None]
    limit_998: tuple[float | None, float | None]
    flagged: bool
    direction: str | None
    q_value: float | None


@dataclass
class VoiceData:
    topics: list[TopicRow] = field(default_factory=list)
    terms: list[TermRow] = field(default_factory=list)
    drivers: list[DriverRow] = field(default_factory=list)
    satisfaction_funnels: list[FunnelPoint] = field(default_factory=list)
    complaint_funnel: list[FunnelPoint] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [SCHEMA]).fetchall()}


def _f(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def read_voice(con: duckdb.DuckDBPyConnection, month: date) -> VoiceData:
    """The month's rows of the five marts; a mart missing from the file is named in ``missing``."""
    present = _tables(con)
    data = VoiceData(missing=[t for t in VOICE_TABLES if t not in present])
    if "mart_verbatim_topics" in present:
        rows = con.execute(f"""
            select stage, topic_code, any_value(topic_label_zh), any_value(topic_label_en),
                   sum(mentions), sum(commented), sum(satisfied_mentioning),
                   sum(responses_not_mentioning), sum(satisfied_not_mentioning),
                   sum(sentiment_score_sum), sum(sentiment_scored)
            from {SCHEMA}.mart_verbatim_topics where month = ?
            group by stage, topic_code
            order by stage, sum(mentions) desc, topic_code""", [month]).fetchall()
        for stage, code, zh, en, x, n, sat_x, rest, sat_rest, ssum, sn in rows:
            if not x:
                continue
            data.topics.append(TopicRow(stage, code, zh, en, int(x), int(n),
                                        sat_x / x if x else None, sat_rest / rest if rest else None,
                                        ssum / sn if sn else None))
    if "mart_emerging_terms" in present:
        for stage, term, x, n, share, base, rank in con.execute(f"""
                select stage, term, comments_with_term, comments, share, baseline_share, emerging_rank
                from {SCHEMA}.mart_emerging_terms
                where month = ? and is_emerging and emerging_rank <= ?
                order by stage, emerging_rank""", [month, TOP_TERMS]).fetchall():
            data.terms.append(TermRow(stage, term, int(x), int(n), float(share), _f(base), int(rank)))
    if "mart_key_drivers" in present:
        for r in con.execute(f"""
                select outcome, driver_stage, status, coefficient, ci_low, ci_high, effect, effect_low, effect_high,
                       p_value_holm, coalesce(is_significant, false), driver_rank, n_observations, model_fit
                from {SCHEMA}.mart_key_drivers where line_of_business = 'ALL'
                order by outcome desc, driver_stage""").fetchall():
            data.drivers.append(DriverRow(r[0], r[1], r[2], *(_f(v) for v in r[3:10]), bool(r[10]),
                                          None if r[11] is None else int(r[11]),
                                          None if r[12] is None else int(r[12]), _f(r[13])))
    if "mart_satisfaction_control_limits" in present:
        for r in con.execute(f"""
                select branch_code, stage, responses, csat, company_csat, limit_95_low, limit_95_high,
                       limit_998_low, limit_998_high, flagged, flag_direction, q_value
                from {SCHEMA}.mart_satisfaction_control_limits where month = ?
                order by stage, branch_code""", [month]).fetchall():
            data.satisfaction_funnels.append(FunnelPoint(
                r[0], r[1], float(r[2]), float(r[3]), float(r[4]), (_f(r[5]), _f(r[6])), (_f(r[7]), _f(r[8])),
                bool(r[9]), r[10], _f(r[11])))
    if "mart_complaint_control_limits" in present:
        for r in con.execute(f"""
                select branch_code, policies_in_force, per_10k_policies, company_per_10k_policies,
                       limit_95_low, limit_95_high, limit_998_low, limit_998_high, flagged, flag_direction, q_value
                from {SCHEMA}.mart_complaint_control_limits where month = ?
                order by branch_code""", [month]).fetchall():
            data.complaint_funnel.append(FunnelPoint(
                r[0], None, float(r[1]), float(r[2]), float(r[3]), (_f(r[4]), _f(r[5])), (_f(r[6]), _f(r[7])),
                bool(r[8]), r[9], _f(r[10])))
    return data


# --------------------------------------------------------------------------------------------------
# rendering


def _stage(stage: str, esc) -> str:
    zh, en = STAGE_LABELS.get(stage, (stage, stage))
    return esc(f"{zh} {en}" if zh != en else zh)


def funnel_svg(points: list[FunnelPoint], *, label: str, value_format, esc, branch_text) -> str:
    """A funnel plot: x = the unit's size (responses or policies, log scale), y = its value; the
    centre line solid grey, the 95% limits dashed, the 99.8% limits solid, each a polyline through
    the limits at the units' own sizes (the mart's numbers). Units inside are hollow circles;
    flagged units are filled triangles (pointing down below, up above) with their code beside."""
    pts = [p for p in points if p.trials > 0]
    if not pts:
        return ""
    left, top, w, h = 60, 16, 420, 200
    lo_x, hi_x = math.log10(min(p.trials for p in pts)), math.log10(max(p.trials for p in pts))
    if hi_x - lo_x < 0.3:
        lo_x, hi_x = lo_x - 0.15, hi_x + 0.15
    ys = [p.value for p in pts] + [v for p in pts for v in (*p.limit_998, p.centre) if v is not None]
    lo_y, hi_y = min(ys), max(ys)
    pad = (hi_y - lo_y) * 0.08 or 0.05
    lo_y, hi_y = lo_y - pad, hi_y + pad

    def sx(n: float) -> float:
        return left + w * (math.log10(n) - lo_x) / (hi_x - lo_x)

    def sy(v: float) -> float:
        return top + h * (1 - (v - lo_y) / (hi_y - lo_y))

    parts = [f'<svg class="chart" width="{left + w + 70}" height="{top + h + 34}" role="img" '
             f'aria-label="{esc(label)}">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo_y + (hi_y - lo_y) * frac
        parts.append(f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" class="lbl sm">'
                     f'{esc(value_format(v))}</text>')
    for n in sorted({10 ** k for k in range(0, 8) if lo_x <= k <= hi_x}):
        parts.append(f'<text x="{sx(n):.1f}" y="{top + h + 14}" text-anchor="middle" class="lbl sm">{n:,}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{top + h + 28}" text-anchor="middle" class="lbl sm">'
                 f'{esc(label)}</text>')
    ordered = sorted(pts, key=lambda p: p.trials)
    centre = ordered[0].centre
    parts.append(f'<line x1="{left}" y1="{sy(centre):.1f}" x2="{left + w}" y2="{sy(centre):.1f}" '
                 'stroke="#555" stroke-width="1"/>')
    for limits, dash, width in (("limit_95", ' stroke-dasharray="5 3"', 1.2), ("limit_998", "", 1.2)):
        for side in (0, 1):
            line = [(sx(p.trials), sy(getattr(p, limits)[side])) for p in ordered if getattr(p, limits)[side] is not None]
            if len(line) > 1:
                parts.append('<polyline fill="none" stroke="#000"' + dash + f' stroke-width="{width}" points="'
                             + " ".join(f"{x:.1f},{y:.1f}" for x, y in line) + '"/>')
    for p in ordered:
        x, y = sx(p.trials), sy(p.value)
        title = f"{branch_text(p.unit)}: {value_format(p.value)}, n {p.trials:,.0f}" + (" — flagged" if p.flagged else "")
        if p.flagged:
            d = 6 if p.direction == "BELOW" else -6
            parts.append(f'<g><title>{esc(title)}</title><polygon points="{x - 5:.1f},{y - d:.1f} {x + 5:.1f},{y - d:.1f} '
                         f'{x:.1f},{y + d:.1f}" fill="#000"/><text x="{x + 7:.1f}" y="{y + 4:.1f}" class="lbl">'
                         f'{esc(p.unit)}</text></g>')
        else:
            parts.append(f'<g><title>{esc(title)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#fff" '
                         'stroke="#000"/></g>')
    parts.append("</svg>")
    return "".join(parts)


def driver_svg(rows: list[DriverRow], *, esc) -> str:
    """Each stage's effect with its 95% interval (odds ratio, log axis; or NPS points). A significant
    driver is a filled square with its rank; one that is not is a hollow circle marked n.s.; a stage
    not estimated has no mark and says why. Stages in journey order, never sorted by effect."""
    if not rows:
        return ""
    odds = rows[0].outcome == "RENEWAL"
    scale = (lambda v: math.log(v)) if odds else (lambda v: v)
    values = [scale(v) for r in rows for v in (r.effect_low, r.effect_high) if v is not None and (not odds or v > 0)]
    reference = scale(1.0) if odds else 0.0
    lo, hi = min([*values, reference]), max([*values, reference])
    pad = (hi - lo) * 0.1 or 0.1
    lo, hi = lo - pad, hi + pad
    left, w, h = 200, 300, 26
    height = 30 + h * len(rows)

    def sx(v: float) -> float:
        return left + w * (scale(v) - lo) / (hi - lo)

    parts = [f'<svg class="chart" width="{left + w + 150}" height="{height}" role="img">']
    ref_x = left + w * (reference - lo) / (hi - lo)
    parts.append(f'<line x1="{ref_x:.1f}" y1="14" x2="{ref_x:.1f}" y2="{height}" stroke="#555" stroke-dasharray="2 2"/>'
                 f'<text x="{ref_x:.1f}" y="10" text-anchor="middle" class="lbl sm">'
                 f'{"OR 1 (no effect)" if odds else "0 (no effect)"}</text>')
    for i, r in enumerate(rows):
        y = 30 + i * h + h / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" class="lbl">{_stage(r.stage, esc)}</text>')
        if r.status != "ESTIMATED" or r.effect is None:
            parts.append(f'<text x="{left}" y="{y + 4}" class="lbl sm">not estimated: {esc(r.status)}</text>')
            continue
        x0, x1, xm = sx(r.effect_low), sx(r.effect_high), sx(r.effect)
        parts.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#000" stroke-width="1.5"/>')
        if r.is_significant:
            parts.append(f'<rect x="{xm - 5:.1f}" y="{y - 5}" width="10" height="10" fill="#000"/>')
            tag = f"#{r.rank} {r.effect:.2f}"
        else:
            parts.append(f'<circle cx="{xm:.1f}" cy="{y}" r="5" fill="#fff" stroke="#000" stroke-width="1.5"/>')
            tag = f"n.s. {r.effect:.2f}"
        parts.append(f'<text x="{left + w + 8}" y="{y + 4}" class="lbl sm">{esc(tag)} '
                     f'[{r.effect_low:.2f}, {r.effect_high:.2f}]</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_voice_sections(data: VoiceData, *, esc, branch_text, first_number: int = 7) -> list[str]:
    sections: list[str] = []
    number = first_number

    # the customers' own words
    if data.topics or data.terms:
        rows = []
        for stage in [s for s in STAGE_LABELS if any(t.stage == s for t in data.topics)]:
            for t in [t for t in data.topics if t.stage == stage][:TOP_TOPICS]:
                interval = wilson_interval(t.mentions, t.commented)
                gap = ("–" if t.csat_mentioning is None or t.csat_not_mentioning is None
                       else f"{(t.csat_mentioning - t.csat_not_mentioning) * 100:+.1f} pts")
                rows.append(
                    f"<tr><th>{_stage(stage, esc)}</th><td>{esc(t.label_zh)} <small>{esc(t.label_en)}</small></td>"
                    f"<td>{t.mentions:,} / {t.commented:,}</td><td>{esc(format_percent(t.mentions / t.commented))}"
                    f" ({esc(format_percent(interval[0]))} – {esc(format_percent(interval[1]))})</td>"
                    f"<td>{esc(format_percent(t.csat_mentioning))} vs {esc(format_percent(t.csat_not_mentioning))} ({esc(gap)})</td>"
                    f"<td>{'–' if t.mean_sentiment is None else f'{t.mean_sentiment:+.2f}'}</td></tr>")
        body = ""
        if rows:
            body += ('<table class="grid"><thead><tr><th>环节 Stage</th><th>主题 Topic</th><th>提及/评论 mentions/comments</th>'
                     "<th>提及率 share (95% interval)</th><th>满意度 CSAT mentioning vs not</th><th>情感 Sentiment</th>"
                     "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
        if data.terms:
            items = "".join(
                f"<li>{_stage(t.stage, esc)}: {esc(t.term)} — {t.comments_with_term:,} of {t.comments:,} comments "
                f"({esc(format_percent(t.share))}; before {esc(format_percent(t.baseline_share) if t.baseline_share else 'none')})</li>"
                for t in data.terms)
            body += f"<h3>新出现的热词 Emerging terms</h3><ul>{items}</ul>"
        else:
            body += "<p>新出现的热词 Emerging terms: none this month (no term's share rose beyond chance).</p>"
        sections.append(f"<h2>{number}. 客户原声 What customers wrote</h2><p>The {TOP_TOPICS} most mentioned topics "
                        "of each stage's comments this month (reviewed topic dictionary), their share of the comments "
                        "with a 95% Wilson interval, CSAT of the responses that mention the topic against the others, "
                        "and the lexicon sentiment (−1 to +1). Phone and ID numbers are removed from every comment; "
                        "terms are shown only when at least 5 comments use them.</p>" + body)
        number += 1

    # key drivers
    if data.drivers:
        charts = ""
        for outcome, title in (("RENEWAL", "续保 Renewal — odds ratio of renewing, satisfied vs dissatisfied answer"),
                               ("LATER_NPS", "后续NPS Later NPS — points, satisfied vs dissatisfied answer")):
            rows = [r for r in data.drivers if r.outcome == outcome]
            if rows:
                n = next((r.n_observations for r in rows if r.n_observations), None)
                fit = next((r.model_fit for r in rows if r.model_fit is not None), None)
                charts += (f"<h3>{esc(title)}</h3><p>n = {n or 0:,}"
                           + (f", model fit {'pseudo-R²' if outcome == 'RENEWAL' else 'R²'} {fit:.3f}" if fit is not None else "")
                           + "</p>" + driver_svg(rows, esc=esc))
        sections.append(f"<h2>{number}. 关键驱动因素 What drives renewal and later scores</h2><p>Regression of each outcome "
                        "on every claim stage's survey answer, all lines of business. ■ with a rank: a significant driver "
                        "(Holm-adjusted p &lt; 0.05), ranked by effect; ○ n.s.: not significant, not ranked. Lines: 95% "
                        "intervals.</p>" + charts)
        number += 1

    # control limits
    if data.satisfaction_funnels or data.complaint_funnel:
        plots = ""
        for stage in [s for s in STAGE_LABELS if any(p.stage == s for p in data.satisfaction_funnels)]:
            points = [p for p in data.satisfaction_funnels if p.stage == stage]
            plots += f"<h3>{_stage(stage, esc)}</h3>" + funnel_svg(
                points, label="responses (log scale) → CSAT", value_format=format_percent, esc=esc, branch_text=branch_text)
        if data.complaint_funnel:
            plots += "<h3>投诉率 Complaints per 10k policies</h3>" + funnel_svg(
                data.complaint_funnel, label="policies in force (log scale) → complaints per 10k",
                value_format=lambda v: f"{v:.2f}", esc=esc, branch_text=branch_text)
        flagged = [p for p in data.satisfaction_funnels + data.complaint_funnel if p.flagged]
        if flagged:
            names = "".join(
                f"<li>{esc(branch_text(p.unit))}"
                + (f" · {_stage(p.stage, esc)}: CSAT {esc(format_percent(p.value))}" if p.stage else
                   f": {p.value:.2f} complaints per 10k policies")
                + f" — {'below' if p.direction == 'BELOW' else 'above'} the company ("
                + (esc(format_percent(p.centre)) if p.stage else f"{p.centre:.2f}") + f"), q = {p.q_value:.3f}</li>"
                for p in flagged)
            named = f"<p>Outside the adjusted limits (flagged):</p><ul>{names}</ul>"
        else:
            named = "<p>No branch or cell is outside the adjusted limits this month.</p>"
        sections.append(f"<h2>{number}. 控制限 Control limits (funnel plots)</h2><p>Each branch against the company, "
                        "by size. Dashed: 95% limits; solid: 99.8% limits, both widened for the ordinary spread between "
                        "branches. ▼/▲ with a code: flagged, after false-discovery control over the month's whole grid "
                        "(at most 5% of flags expected false); ○: not flagged. Only flagged cells are named.</p>"
                        + named + plots)
    return sections
