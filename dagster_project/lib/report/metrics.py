"""Which KPIs the monthly snapshot records, and the statistics behind the report. Pure functions only.

A snapshot row is one number for one (branch, metric) in one period, with the numerator and the
denominator it came from whenever the number is a rate, so that a reader (or a significance test) can
tell 3 of 4 from 300 of 400.

Month-over-month changes are only *marked* in the report when they are statistically significant:
- proportions (CSAT, valid rate, service level, ...): two-proportion z-test with the pooled rate;
- rates per exposure (complaints per 10k policies): the conditional test for two Poisson rates
  (given x1 + x2 events, x1 is binomial with p = e1 / (e1 + e2) under "same rate");
- anything else (percentiles, lifts, counts of customers): shown, never marked, because the snapshot
  does not hold the distribution a test would need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

COMPANY = "ALL"  # branch_code of the company-wide rows
COMPANY_LABEL = ("全公司", "Company")
SIGNIFICANCE_LEVEL = 0.05
COMPLAINT_DEADLINE_DAYS = 15  # CBIRC Order 2020 No. 3: a decision within 15 days of receipt
# A satisfaction cell with fewer responses is low-sample: never ranked on its own (the dbt var
# min_sample_size; tests/report/test_metrics.py keeps the two equal). docs/definitions.md#low-sample
MIN_SAMPLE_SIZE = 100
ROLLING_MONTHS = 3  # low-sample cells roll up over the period and the months before it


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label_zh: str
    label_en: str
    kind: str  # "proportion" | "per_exposure" | "value" | "count"
    unit: str  # "pct" | "days" | "per10k" | "ratio" | "count"
    higher_is_better: bool | None  # None: no direction (e.g. a mix share)
    scale: float = 1.0  # per_exposure: value = scale * numerator / denominator


STAGE_LABELS: dict[str, tuple[str, str]] = {
    "REPORT": ("报案", "Claim report"),
    "SURVEY": ("查勘", "On-site survey"),
    "ASSESSMENT": ("定损", "Loss assessment"),
    "PAYMENT": ("给付", "Payment"),
    "COMPLAINT": ("投诉", "Complaint handling"),
}
SEGMENT_LABELS: dict[str, tuple[str, str]] = {
    "QUALITY": ("优质", "Quality"),
    "HEALTHY": ("健康", "Healthy"),
    "SUB_HEALTHY": ("亚健康", "Sub-healthy"),
    "HIGH_RISK": ("高风险", "High-risk"),
    "NOT_YET_RATED": ("未评级", "Not yet rated"),
}

_BASE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("claim_closure_rate", "立案结案率", "Claim closure rate", "proportion", "pct", True),
    MetricSpec("claims_paid_within_10d_share", "十日内赔付率", "Claims paid within 10 days of agreement (art. 23)",
               "proportion", "pct", True),
    MetricSpec("complaints_received", "投诉受理量", "Complaints received", "count", "count", False),
    MetricSpec("valid_complaint_rate", "有效投诉率", "Valid-complaint rate", "proportion", "pct", False),
    MetricSpec("complaints_per_10k_policies", "万张保单投诉量", "Complaints per 10k policies",
               "per_exposure", "per10k", False, scale=10_000.0),
    MetricSpec("complaint_handling_days_p90", "投诉处理周期P90(天)", "Complaint handling days, p90",
               "value", "days", False),
    MetricSpec("complaint_within_deadline_share", "投诉件办理及时率", "Complaints closed within deadline",
               "proportion", "pct", True),
    MetricSpec("winback_rate", "挽回率(续保)", "Win-back rate (renewed ÷ due)", "proportion", "pct", True),
    MetricSpec("renewal_lift", "续保提升倍数", "Renewal lift vs non-complainants (1.00 = same)", "value",
               "ratio", True),
    MetricSpec("service_level_20s", "20秒人工接通率", "Service level (answered ≤ 20 s)",
               "proportion", "pct", True),
    MetricSpec("abandon_rate", "放弃率", "Abandon rate", "proportion", "pct", False),
    MetricSpec("manual_answer_rate", "电话呼入人工接通率", "Manual answer rate", "proportion", "pct", True),
    MetricSpec("watchlist_customers", "核保关注名单客户数", "Underwriting watch-list customers",
               "count", "count", None),
    # closing the loop (docs/definitions.md#mart_followup, #mart_contact_resolution, #mart_complaint_regulatory)
    MetricSpec("followup_overdue_share", "回访逾期率", "Follow-up cases past their deadline", "proportion", "pct",
               False),
    MetricSpec("first_contact_resolution", "首次解决率", "First-contact resolution (FCR)", "proportion", "pct", True),
    MetricSpec("complaint_index", "投诉指数", "Complaint index (1.00 = in line with premium)", "value", "ratio",
               False),
)
_CSAT_METRICS = tuple(
    MetricSpec(f"csat.{stage}", f"{zh}满意度", f"{en} CSAT", "proportion", "pct", True)
    for stage, (zh, en) in STAGE_LABELS.items()
)
_SEGMENT_METRICS = tuple(
    MetricSpec(f"segment_share.{seg}", f"{zh}客户占比", f"{en} customers share", "proportion", "pct", None)
    for seg, (zh, en) in SEGMENT_LABELS.items()
)
METRICS: dict[str, MetricSpec] = {m.key: m for m in (*_CSAT_METRICS, *_BASE_METRICS, *_SEGMENT_METRICS)}
METRIC_ORDER: dict[str, int] = {key: i for i, key in enumerate(METRICS)}


def metric_spec(metric: str) -> MetricSpec:
    """The spec of a metric key; unknown keys (a newer snapshot read by older code) get a neutral one."""
    return METRICS.get(metric) or MetricSpec(metric, metric, metric, "value", "ratio", None)


@dataclass(frozen=True)
class KpiRow:
    branch_code: str
    metric: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    # cohort metrics (claims by report month): False while the month's claims are still open, so
    # the number can still move and is not compared with other months; None for other metrics
    mature: bool | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch_code, self.metric)


def sort_rows(rows: list[KpiRow]) -> list[KpiRow]:
    """Company first, then branches by code; metrics in catalogue order (deterministic output)."""
    return sorted(rows, key=lambda r: (r.branch_code != COMPANY, r.branch_code,
                                       METRIC_ORDER.get(r.metric, len(METRIC_ORDER)), r.metric))


# --------------------------------------------------------------------------------------------------
# periods


def parse_period(period: str) -> date:
    """'2024-06' -> date(2024, 6, 1); a clear error for anything else."""
    try:
        year_s, month_s = period.split("-")
        if len(year_s) != 4 or len(month_s) != 2:
            raise ValueError
        return date(int(year_s), int(month_s), 1)
    except ValueError:
        raise ValueError(f"period must be YYYY-MM, got {period!r}") from None


def previous_period(period: str) -> str:
    first = parse_period(period)
    year, month = (first.year, first.month - 1) if first.month > 1 else (first.year - 1, 12)
    return f"{year:04d}-{month:02d}"


# --------------------------------------------------------------------------------------------------
# statistics


def _normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def wilson_interval(successes: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval for successes/n (Brown, Cai & DasGupta 2001); None when n = 0."""
    if not n or n <= 0:
        return None
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def poisson_interval(events: float, exposure: float, scale: float = 1.0,
                     z: float = 1.96) -> tuple[float, float] | None:
    """95% interval for a rate events / exposure × scale (events Poisson), by Byar's approximation
    of the exact (Garwood) limits; None without exposure."""
    if not exposure or exposure <= 0 or events is None or events < 0:
        return None
    x = float(events)
    if x == 0:
        low = 0.0
    else:
        low = x * (1 - 1 / (9 * x) - z / (3 * math.sqrt(x))) ** 3
    x1 = x + 1
    high = x1 * (1 - 1 / (9 * x1) + z / (3 * math.sqrt(x1))) ** 3
    return (max(0.0, low) * scale / exposure, high * scale / exposure)


def interval_of(row: "KpiRow") -> tuple[float, float] | None:
    """The 95% interval of a company or branch row: Wilson for proportions, Poisson for rates per
    exposure; None for values without a sampling model (percentiles, counts, lifts)."""
    if row.numerator is None or row.denominator is None:
        return None
    spec = metric_spec(row.metric)
    if spec.kind == "proportion":
        return wilson_interval(row.numerator, row.denominator)
    if spec.kind == "per_exposure":
        return poisson_interval(row.numerator, row.denominator, spec.scale)
    return None


def two_proportion_z_test(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float] | None:
    """(z, two-sided p) for H0: p1 = p2, with the pooled rate. None if either sample is empty or the
    pooled rate is 0 or 1 (no variance: nothing to test)."""
    if not n1 or not n2 or n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0:
        return None
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return z, _normal_two_sided_p(z)


def poisson_rate_z_test(x1: float, e1: float, x2: float, e2: float) -> tuple[float, float] | None:
    """(z, two-sided p) for H0: x1/e1 = x2/e2 (events over exposure), conditioning on x1 + x2:
    under H0, x1 ~ Binomial(x1 + x2, e1 / (e1 + e2)); normal approximation."""
    if not e1 or not e2 or e1 <= 0 or e2 <= 0:
        return None
    total = x1 + x2
    if total <= 0:
        return None
    share = e1 / (e1 + e2)
    variance = total * share * (1.0 - share)
    if variance <= 0:
        return None
    z = (x1 - total * share) / math.sqrt(variance)
    return z, _normal_two_sided_p(z)


@dataclass(frozen=True)
class Change:
    """A month-over-month change of one metric for one branch (or the company)."""

    branch_code: str
    metric: str
    current: float | None
    previous: float | None
    delta: float | None
    p_value: float | None  # None: not tested (no numerator/denominator, or not a rate)
    significant: bool
    direction: str  # "up" | "down" | "flat" | "n/a"
    assessment: str  # "better" | "worse" | "neutral" (only meaningful when significant)
    immature: bool = False  # a claim cohort still open in one of the months: not compared


def month_over_month(current: KpiRow, previous: KpiRow | None,
                     alpha: float = SIGNIFICANCE_LEVEL) -> Change:
    spec = metric_spec(current.metric)
    if previous is None or current.value is None or previous.value is None:
        return Change(current.branch_code, current.metric, current.value,
                      previous.value if previous else None, None, None, False, "n/a", "neutral")
    if current.mature is False or previous.mature is False:
        # the month's claims are still open: its value will move, so the change is not a change
        return Change(current.branch_code, current.metric, current.value, previous.value, None, None,
                      False, "n/a", "neutral", immature=True)
    delta = current.value - previous.value
    test = None
    have_counts = None not in (current.numerator, current.denominator,
                               previous.numerator, previous.denominator)
    if have_counts and spec.kind == "proportion":
        test = two_proportion_z_test(current.numerator, current.denominator,
                                     previous.numerator, previous.denominator)
    elif have_counts and spec.kind == "per_exposure":
        test = poisson_rate_z_test(current.numerator, current.denominator,
                                   previous.numerator, previous.denominator)
    p_value = test[1] if test else None
    significant = p_value is not None and p_value < alpha and delta != 0
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    assessment = "neutral"
    if significant and spec.higher_is_better is not None:
        assessment = "better" if (delta > 0) == spec.higher_is_better else "worse"
    return Change(current.branch_code, current.metric, current.value, previous.value, delta,
                  p_value, significant, direction, assessment)


def benjamini_hochberg(p_values: list[float], q: float = SIGNIFICANCE_LEVEL) -> list[bool]:
    """Which hypotheses to reject with the false-discovery rate controlled at q (Benjamini &
    Hochberg 1995): the largest k with p_(k) <= k/m * q, and every p at or below it."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = -1
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= rank / m * q:
            cutoff = rank
    rejected = [False] * m
    for rank, i in enumerate(order, start=1):
        rejected[i] = rank <= cutoff
    return rejected


def compare_periods(current: list[KpiRow], previous: list[KpiRow],
                    alpha: float = SIGNIFICANCE_LEVEL) -> dict[tuple[str, str], Change]:
    """Month-over-month change of every row. A report tests hundreds of branch × metric changes;
    at p < 0.05 each, about one in twenty unchanged cells would be marked by chance. So a change is
    marked significant only if it survives the Benjamini–Hochberg procedure over all the tests of the
    report (false-discovery rate `alpha`)."""
    before = {r.key: r for r in previous}
    changes = {r.key: month_over_month(r, before.get(r.key), alpha) for r in current}
    tested = [key for key, c in changes.items() if c.p_value is not None]
    keep = benjamini_hochberg([changes[k].p_value for k in tested], alpha)
    for key, significant in zip(tested, keep):
        c = changes[key]
        if c.significant and not significant:
            changes[key] = Change(c.branch_code, c.metric, c.current, c.previous, c.delta, c.p_value,
                                  False, c.direction, "neutral", c.immature)
    return changes


# --------------------------------------------------------------------------------------------------
# company-wide roll-ups and revisions


def company_proportion(rows: list[KpiRow], metric: str, scale: float = 1.0) -> KpiRow | None:
    """Company value of a ratio metric = scale × Σ numerators ÷ Σ denominators over branches (never
    the mean of branch rates, which would weight a small branch like a large one)."""
    parts = [r for r in rows if r.metric == metric and r.branch_code != COMPANY
             and r.numerator is not None and r.denominator is not None]
    if not parts:
        return None
    num = sum(r.numerator for r in parts)
    den = sum(r.denominator for r in parts)
    flags = [r.mature for r in parts if r.mature is not None]
    mature = all(flags) if flags else None
    return KpiRow(COMPANY, metric, scale * num / den if den else None, num, den, mature)


def _same(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# Metrics relative to the company (a branch's share of something ÷ its share of something else):
# late data in one branch moves them in every branch, so a revision note lists them last.
RELATIVE_METRICS = frozenset({"complaint_index"})


def changed_keys(old: list[KpiRow], new: list[KpiRow], tol: float = 1e-9) -> list[str]:
    """Human-readable list of what differs between two snapshots of one period: added, removed or
    changed (value, numerator or denominator beyond `tol`) rows: the branches' rows first (they say
    where late data landed), then the company's, then the RELATIVE_METRICS; each by branch and
    metric. Empty list: identical."""
    before = {r.key: r for r in old}
    after = {r.key: r for r in new}
    notes: list[str] = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[1] in RELATIVE_METRICS, k[0] == COMPANY, k)):
        branch, metric = key
        a, b = before.get(key), after.get(key)
        if a is None:
            notes.append(f"{metric}@{branch} added")
        elif b is None:
            notes.append(f"{metric}@{branch} removed")
        elif not (_same(a.value, b.value, tol) and _same(a.numerator, b.numerator, tol)
                  and _same(a.denominator, b.denominator, tol)):
            notes.append(f"{metric}@{branch} {format_number(a.value)}→{format_number(b.value)}")
    return notes


def revision_reason(notes: list[str], limit: int = 8) -> str:
    shown = "; ".join(notes[:limit])
    more = f"; and {len(notes) - limit} more" if len(notes) > limit else ""
    return f"late data changed {len(notes)} number(s): {shown}{more}"


# --------------------------------------------------------------------------------------------------
# formatting (the report and the e-mail show numbers one way)


def format_percent(value: float | None) -> str:
    """A share as a percentage with one decimal; a dash where there is none."""
    return "–" if value is None else f"{value * 100:.1f}%"


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}"


def format_value(metric: str, value: float | None) -> str:
    """Managers read percentages with 1 decimal, days with 1 decimal, counts as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    unit = metric_spec(metric).unit
    if unit == "pct":
        return f"{value * 100:.1f}%"
    if unit == "days":
        return f"{value:.1f}"
    if unit == "per10k":
        return f"{value:.2f}"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_delta(metric: str, delta: float | None) -> str:
    if delta is None:
        return "–"
    unit = metric_spec(metric).unit
    if unit == "pct":
        return f"{delta * 100:+.1f} pp"
    if unit == "count":
        return f"{delta:+,.0f}"
    if unit == "per10k":
        return f"{delta:+.2f}"
    return f"{delta:+.1f}" if unit == "days" else f"{delta:+.2f}"


def format_interval(metric: str, interval: tuple[float, float] | None) -> str:
    """'95% CI 81.2–84.0%' in the metric's unit; empty without an interval."""
    if interval is None:
        return ""
    return f"95% CI {format_value(metric, interval[0]).rstrip('%')}–{format_value(metric, interval[1])}"


def format_p_value(p: float | None) -> str:
    if p is None:
        return "not tested"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
