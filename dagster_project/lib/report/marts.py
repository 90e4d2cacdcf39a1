"""Read one period's KPIs from the published marts (a read-only DuckDB connection).

Which column is a KPI's numerator and denominator, and how it rolls up to the company, is the dbt
catalog's (the mart's ``.yml``, ``config.meta.kpi``; ``lib/transform/catalog.py``): the report
names a metric's mart and value column only. A published file older than the catalog that lacks a
count, but has the rate and the other count, gets the missing count derived from them so that the
significance tests still have their n. Marts that are missing (an older published file) are skipped
and listed, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import duckdb

from dagster_project.lib.report.metrics import (
    COMPANY,
    METRICS,
    MIN_SAMPLE_SIZE,
    ROLLING_MONTHS,
    KpiRow,
    company_proportion,
    parse_period,
    poisson_interval,
    sort_rows,
    wilson_interval,
)
from dagster_project.lib.report.semantic import SemanticError, headline_definitions
from dagster_project.lib.report.voice import VoiceData, read_voice

from dagster_project.lib.transform.catalog import CatalogError, KpiColumn, kpi, load_manifest
from dagster_project.lib.transform.dbt_project import prepare_manifest

SCHEMA = "marts"


@dataclass(frozen=True)
class RateSource:
    """One metric read per branch from one mart row (grain branch_code × month); its numerator,
    denominator and company rollup are the catalog's entry of the value column."""

    metric: str
    table: str
    value: str  # the KPI column; its meta.kpi in the mart's yml says how it is made
    # a denominator computed from columns, when the mart has no column for it: (SQL, columns used)
    denominator_expr: tuple[str, tuple[str, ...]] | None = None
    # a cohort metric's maturity flag column (claims by report month): immature months are not compared
    maturity: str | None = None

    @property
    def kpi(self) -> KpiColumn:
        spec = _catalog_kpi(self.table, self.value)
        if spec is None:
            raise CatalogError(f"{self.table}.{self.value}: no config.meta.kpi in the mart's yml "
                               "(the report takes the KPI's numerator and denominator from there)")
        return spec

    @property
    def numerator(self) -> tuple[str, ...]:
        return (self.kpi.numerator,) if self.kpi.numerator else ()

    @property
    def denominator(self) -> tuple[str, ...]:
        return (self.kpi.denominator,) if self.kpi.denominator else ()

    @property
    def company(self) -> str:
        """"ratio" (Σnum/Σden), "sum" (Σvalue) or "none" (not additive)."""
        if self.denominator_expr:
            return "ratio"
        return self.kpi.rollup if self.kpi.rollup in ("ratio", "sum") else "none"


@lru_cache(maxsize=None)
def _catalog_kpi(table: str, column: str) -> KpiColumn | None:
    return kpi(table, column, load_manifest(prepare_manifest()))


RATE_SOURCES: tuple[RateSource, ...] = (
    # closure_rate is the rolling (trailing-months) rate (docs/definitions.md#mart_claim_cycle-closure_rate)
    RateSource("claim_closure_rate", "mart_claim_cycle", "closure_rate"),
    # Insurance Law art. 23, by the claims' report month: immature while the month's claims are open
    RateSource("claims_paid_within_10d_share", "mart_claim_cycle", "paid_within_10d_share", maturity="is_mature"),
    RateSource("complaints_received", "mart_complaints", "received"),
    RateSource("valid_complaint_rate", "mart_complaints", "valid_rate"),
    RateSource("complaints_per_10k_policies", "mart_complaints", "per_10k_policies"),
    RateSource("complaint_handling_days_p90", "mart_complaints", "handling_days_p90"),
    RateSource("complaint_within_deadline_share", "mart_complaints", "within_deadline_share"),
    RateSource("winback_rate", "mart_winback", "winback_rate"),
    # renewal_lift = winback_rate / baseline_renewal_rate, and the baseline is the mean over the due
    # complaints, so lift = renewed / (baseline × due): renewals against the renewals expected if
    # complainants renewed like comparable non-complainants. That makes the company value exact.
    RateSource("renewal_lift", "mart_winback", "renewal_lift",
               denominator_expr=("baseline_renewal_rate * due_for_renewal",
                                 ("baseline_renewal_rate", "due_for_renewal"))),
    RateSource("service_level_20s", "mart_call_center_monthly", "service_level_20s"),
    RateSource("abandon_rate", "mart_call_center_monthly", "abandon_rate"),
    RateSource("manual_answer_rate", "mart_call_center_monthly", "manual_answer_rate"),
    # follow-up cases opened in the month; contacts and the complaint index from the scorecard,
    # whose branch x month rows sum the contact-resolution mart's queues
    RateSource("followup_overdue_share", "mart_followup", "overdue_share"),
    RateSource("first_contact_resolution", "mart_branch_scorecard", "first_contact_resolution"),
    # branch share of complaints / branch share of premium: the company is 1 by definition (rollup none)
    RateSource("complaint_index", "mart_branch_scorecard", "complaint_index"),
)
assert all(s.metric in METRICS for s in RATE_SOURCES)


@dataclass
class SatisfactionCell:
    branch_code: str
    stage: str
    responses: int
    satisfied: int
    csat: float | None
    wilson_low: float | None
    wilson_high: float | None
    csat_shrunk: float | None
    low_sample: bool
    significantly_below: bool


    # the months the numbers pool: the period itself, or the rolling months ending with it
    months: int = 1


@dataclass
class PeriodData:
    period: str
    rows: list[KpiRow]
    satisfaction: list[SatisfactionCell] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # marts/columns not found in the file
    # the same cells pooled over the ROLLING_MONTHS months ending with the period, where low-sample
    # monthly cells roll up to (docs/definitions.md#low-sample)
    satisfaction_rolling: list[SatisfactionCell] = field(default_factory=list)
    # company-wide figures over the 12 months ending with the period (headline_figures)
    headlines: list = field(default_factory=list)
    # follow-up cases open and past their deadline at the end of the period (read_overdue_cases)
    overdue_cases: list = field(default_factory=list)
    # followed-up against not-followed-up detractors over the 12 months ending with the period
    recovery: list = field(default_factory=list)
    # topics, key drivers and control limits (lib/report/voice.py); None for the previous month
    voice: VoiceData | None = None


def table_columns(con: duckdb.DuckDBPyConnection, table: str, schema: str = SCHEMA) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table]).fetchall()]


def _first(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _read_rate(con, source: RateSource, month: date, missing: list[str]) -> list[KpiRow]:
    columns = table_columns(con, source.table)
    if not columns:
        missing.append(f"{SCHEMA}.{source.table}")
        return []
    if source.value and source.value not in columns:
        missing.append(f"{SCHEMA}.{source.table}.{source.value}")
        return []
    num_col = _first(columns, source.numerator)
    den_col = _first(columns, source.denominator)
    den_sql = f'"{den_col}"' if den_col else "NULL"
    if den_col is None and source.denominator_expr and set(source.denominator_expr[1]) <= set(columns):
        den_sql = source.denominator_expr[0]
    select = ", ".join(f'"{c}"' if c else "NULL" for c in (source.value, num_col)) + f", {den_sql}"
    mature_sql = f'"{source.maturity}"' if source.maturity and source.maturity in columns else "NULL"
    result = con.execute(
        f'SELECT branch_code, {select}, {mature_sql} FROM {SCHEMA}."{source.table}" '
        "WHERE CAST(month AS DATE) = ? ORDER BY branch_code", [month]).fetchall()
    scale = METRICS[source.metric].scale
    rows = []
    for branch, value, num, den, mature in result:
        value, num, den = _float(value), _float(num), _float(den)
        # Derive the missing count from the rate and the other count (see module docstring).
        if source.numerator and num is None and value is not None and den is not None:
            num = value * den / scale
        if (source.denominator or source.denominator_expr) and den is None and value and num is not None:
            den = num * scale / value
        rows.append(KpiRow(str(branch), source.metric, value, num, den,
                           None if mature is None else bool(mature)))
    return rows


def _read_satisfaction(con, month: date, missing: list[str]) -> list[SatisfactionCell]:
    columns = table_columns(con, "mart_stage_satisfaction")
    if not columns:
        missing.append(f"{SCHEMA}.mart_stage_satisfaction")
        return []
    optional = [c if c in columns else None for c in
                ("wilson_low", "wilson_high", "csat_shrunk", "low_sample", "significantly_below")]
    select = ", ".join(f'"{c}"' if c else "NULL" for c in optional)
    result = con.execute(
        f"SELECT branch_code, stage, responses, satisfied, csat, {select} "
        f"FROM {SCHEMA}.mart_stage_satisfaction WHERE CAST(month AS DATE) = ? "
        "ORDER BY branch_code, stage", [month]).fetchall()
    return [SatisfactionCell(str(b), str(s), int(n or 0), int(x or 0), _float(p), _float(lo),
                             _float(hi), _float(shr), bool(low), bool(below))
            for b, s, n, x, p, lo, hi, shr, low, below in result]


def _read_satisfaction_rolling(con, month: date, months: int = ROLLING_MONTHS) -> list[SatisfactionCell]:
    """Branch × stage cells pooled over `months` months ending with `month` (responses and
    satisfied added up), with their Wilson interval; low_sample against MIN_SAMPLE_SIZE. The shrunk
    rate is not pooled (its prior is fitted per month), so it is left empty."""
    if not table_columns(con, "mart_stage_satisfaction"):
        return []
    result = con.execute(
        f"SELECT branch_code, stage, SUM(responses), SUM(satisfied) FROM {SCHEMA}.mart_stage_satisfaction "
        f"WHERE CAST(month AS DATE) <= ? AND CAST(month AS DATE) > CAST(? AS DATE) - INTERVAL {int(months)} MONTH "
        "GROUP BY branch_code, stage ORDER BY branch_code, stage", [month, month]).fetchall()
    company = {stage: (sum(int(n) for _, s, n, _ in result if s == stage),
                       sum(int(x) for _, s, _, x in result if s == stage))
               for stage in {r[1] for r in result}}
    cells = []
    for branch, stage, n, x in result:
        n, x = int(n or 0), int(x or 0)
        low_high = wilson_interval(x, n)
        cn, cx = company[stage]
        cells.append(SatisfactionCell(
            str(branch), str(stage), n, x, x / n if n else None,
            low_high[0] if low_high else None, low_high[1] if low_high else None, None,
            n < MIN_SAMPLE_SIZE, bool(low_high and cn and low_high[1] < cx / cn), months))
    return cells


def _read_segments(con, missing: list[str]) -> list[KpiRow]:
    """Segment mix per branch (as of the last day of the data, not per month: docs/definitions.md#customer-segments)."""
    columns = table_columns(con, "mart_segment_summary")
    count_col = _first(columns, ("customers", "customer_count", "n_customers"))
    if not columns or count_col is None or "segment" not in columns:
        missing.append(f"{SCHEMA}.mart_segment_summary")
        return []
    result = con.execute(
        f'SELECT branch_code, segment, SUM("{count_col}") FROM {SCHEMA}.mart_segment_summary '
        "GROUP BY ALL ORDER BY 1, 2").fetchall()
    per_branch: dict[str, dict[str, float]] = {}
    for branch, segment, customers in result:
        per_branch.setdefault(str(branch), {})[str(segment)] = float(customers or 0)
    rows = []
    for branch, counts in per_branch.items():
        total = sum(counts.values())
        for segment, customers in counts.items():
            rows.append(KpiRow(branch, f"segment_share.{segment}",
                               customers / total if total else None, customers, total))
    return rows


def _read_watchlist(con, missing: list[str]) -> list[KpiRow]:
    columns = table_columns(con, "mart_underwriting_watchlist")
    if not columns or "branch_code" not in columns:
        missing.append(f"{SCHEMA}.mart_underwriting_watchlist")
        return []
    counted = 'COUNT(DISTINCT "customer_key")' if "customer_key" in columns else "COUNT(*)"
    result = con.execute(
        f"SELECT branch_code, {counted} FROM {SCHEMA}.mart_underwriting_watchlist "
        "GROUP BY ALL ORDER BY 1").fetchall()
    return [KpiRow(str(b), "watchlist_customers", float(n)) for b, n in result]


def is_as_of_metric(metric: str) -> bool:
    """Metrics that describe the state as of the last data day, not the month (segments, watch list)."""
    return metric.startswith("segment_share.") or metric == "watchlist_customers"


def with_company_rows(rows: list[KpiRow]) -> list[KpiRow]:
    """Add the company-wide (branch_code 'ALL') row of every metric that adds up across branches."""
    sources = {s.metric: s for s in RATE_SOURCES}
    out = [r for r in rows if r.branch_code != COMPANY]
    for metric in dict.fromkeys(r.metric for r in out):
        mode = sources[metric].company if metric in sources else (
            "sum" if metric == "watchlist_customers" else "ratio")
        if mode == "ratio":
            company = company_proportion(out, metric, METRICS[metric].scale if metric in METRICS else 1.0)
        elif mode == "sum":
            values = [r.value for r in out if r.metric == metric and r.value is not None]
            company = KpiRow(COMPANY, metric, float(sum(values))) if values else None
        else:
            company = None
        if company is not None:
            out.append(company)
    return sort_rows(out)


def read_period(con: duckdb.DuckDBPyConnection, period: str, *, as_of_metrics: bool = True) -> PeriodData:
    """Every snapshot KPI of `period` ('YYYY-MM') per branch plus company-wide rows.

    `as_of_metrics=False` leaves out the metrics that are not per month (segment mix, watch list),
    e.g. for the previous month, where they would only repeat today's state."""
    month = parse_period(period)
    missing: list[str] = []
    rows: list[KpiRow] = []
    satisfaction = _read_satisfaction(con, month, missing)
    for cell in satisfaction:
        rows.append(KpiRow(cell.branch_code, f"csat.{cell.stage}", cell.csat,
                           float(cell.satisfied), float(cell.responses)))
    for source in RATE_SOURCES:
        rows.extend(_read_rate(con, source, month, missing))
    if as_of_metrics:
        rows.extend(_read_segments(con, missing))
        rows.extend(_read_watchlist(con, missing))
    overdue = read_overdue_cases(con, month, missing) if as_of_metrics else []
    recovery = read_recovery(con, month) if as_of_metrics else []
    voice = None
    if as_of_metrics:
        voice = read_voice(con, month)
        missing.extend(voice.missing)
    return PeriodData(period, with_company_rows(rows), satisfaction, sorted(set(missing)),
                      _read_satisfaction_rolling(con, month),
                      headline_figures(con, last_month=month) if as_of_metrics else [],
                      overdue, recovery, voice)


# --------------------------------------------------------------------------------------------------
# closing the loop: the overdue case list and the recovery of followed-up detractors


@dataclass(frozen=True)
class OverdueCase:
    """A follow-up case open and past its deadline at the end of the period: no personal data,
    only the case key (the response or complaint number), its reason and its age."""

    branch_code: str
    case_key: str
    reason: str
    stage: str | None
    opened: str  # YYYY-MM-DD HH:MM
    due: str
    age_days: float
    escalation_level: int


def read_overdue_cases(con: duckdb.DuckDBPyConnection, month: date, missing: list[str]) -> list[OverdueCase]:
    """Cases opened before the end of the month's last day, not closed by then and past their
    deadline then (docs/definitions.md#mart_followup-overdue_at_month_end), oldest first per branch;
    their escalation level as of that moment."""
    columns = table_columns(con, "fct_followup_case")
    if not columns:
        missing.append(f"{SCHEMA}.fct_followup_case")
        return []
    result = con.execute(
        f"""WITH bounds AS (SELECT CAST(? AS DATE) + INTERVAL 1 MONTH AS month_end_ts)
        SELECT branch_code, case_key, reason, stage, strftime(opened_ts, '%Y-%m-%d %H:%M'),
               strftime(due_ts, '%Y-%m-%d %H:%M'),
               date_diff('second', opened_ts, month_end_ts) / 86400.0,
               CASE WHEN escalated_level_2_ts < month_end_ts THEN 2 ELSE 1 END
        FROM {SCHEMA}.fct_followup_case, bounds
        WHERE opened_ts < month_end_ts AND (closed_ts IS NULL OR closed_ts >= month_end_ts)
          AND due_ts < month_end_ts
        ORDER BY branch_code, opened_ts, case_key""", [month]).fetchall()
    return [OverdueCase(str(b), str(k), str(r), None if s is None else str(s), o, d, float(a), int(e))
            for b, k, r, s, o, d, a, e in result]


@dataclass(frozen=True)
class RecoveryFigure:
    """One recovery measure (next survey satisfied, renewal) of detractors followed up in time
    against those left past the deadline, pooled over the months, with both groups' counts."""

    key: str
    label: str
    followed_x: float
    followed_n: float
    not_followed_x: float
    not_followed_n: float

    @property
    def followed(self) -> float | None:
        return self.followed_x / self.followed_n if self.followed_n else None

    @property
    def not_followed(self) -> float | None:
        return self.not_followed_x / self.not_followed_n if self.not_followed_n else None


RECOVERY_SOURCES = (
    ("next_csat", "下次评价满意率 Next survey satisfied", "followed_up_next_satisfied", "followed_up_next_responses",
     "not_followed_up_next_satisfied", "not_followed_up_next_responses"),
    ("renewal", "续保率 Policy renewed", "followed_up_renewed", "followed_up_renewal_due", "not_followed_up_renewed",
     "not_followed_up_renewal_due"),
)


def read_recovery(con: duckdb.DuckDBPyConnection, month: date, months: int = 12) -> list[RecoveryFigure]:
    if not table_columns(con, "mart_followup"):
        return []
    out = []
    for key, label, fx, fn, nx, nn in RECOVERY_SOURCES:
        row = con.execute(
            f"SELECT SUM({fx}), SUM({fn}), SUM({nx}), SUM({nn}) FROM {SCHEMA}.mart_followup "
            f"WHERE month <= CAST(? AS DATE) AND month > CAST(? AS DATE) - INTERVAL {int(months)} MONTH",
            [month, month]).fetchone()
        out.append(RecoveryFigure(key, label, *(float(v or 0) for v in row)))
    return out


# --------------------------------------------------------------------------------------------------
# headline figures (the CLI summary and the report show the same ones)


@dataclass(frozen=True)
class Headline:
    """A company-wide figure pooled over the trailing months of the data: the value, its n (the
    denominator, in `n_unit`), its 95% interval and the months it covers."""

    key: str
    label: str
    value: float | None
    numerator: float | None
    n: float | None
    interval: tuple[float, float] | None
    first_month: str | None
    last_month: str | None
    unit: str = "pct"  # "pct" | "per10k"
    n_unit: str = ""


def headline_figures(con: duckdb.DuckDBPyConnection, months: int = 12,
                     last_month: date | None = None) -> list[Headline]:
    """Company-wide headline KPIs over the last `months` months of each mart (or the `months`
    months ending with `last_month`), pooled from numerators and denominators (never an average of
    branch rates), each with its n and 95% interval. Which KPIs, and the table and SQL of each
    numerator and denominator, are the semantic layer's (the metrics of the saved query
    ``headline_by_month``: lib/report/semantic.py). A mart or column missing from the file gives a
    headline without a value."""
    out = []
    for definition in headline_definitions():
        ratio = definition.ratio
        num, den = ratio.numerator, ratio.denominator
        unit = "per10k" if definition.interval == "poisson" else "pct"
        label = ratio.label
        if (num.table, num.time_column) != (den.table, den.time_column):
            raise SemanticError(f"headline {ratio.metric}: numerator and denominator come from different marts")
        table, month = num.table, num.time_column
        end = (f"CAST('{last_month.isoformat()}' AS DATE)" if last_month is not None
               else f"(SELECT MAX({month}) FROM {SCHEMA}.{table})")
        try:
            total_num, total_den, first, last = con.execute(
                f"SELECT SUM({num.expr}), SUM({den.expr}), strftime(MIN({month}), '%Y-%m'), "
                f"strftime(MAX({month}), '%Y-%m') FROM {SCHEMA}.{table} WHERE {month} <= {end} AND {month} > {end} "
                f"- INTERVAL {int(months)} MONTH").fetchone()
        except duckdb.Error:
            out.append(Headline(definition.key, label, None, None, None, None, None, None, unit, definition.n_unit))
            continue
        total_num = None if total_num is None else float(total_num)
        total_den = None if total_den is None else float(total_den)
        if not total_den:
            out.append(Headline(definition.key, label, None, total_num, total_den, None, first, last, unit,
                                definition.n_unit))
            continue
        value = ratio.scale * total_num / total_den
        if definition.interval == "poisson":
            interval = poisson_interval(total_num, total_den, ratio.scale)
        else:
            interval = wilson_interval(total_num, total_den)
        out.append(Headline(definition.key, label, value, total_num, total_den, interval, first, last, unit,
                            definition.n_unit))
    return out


def format_headline(h: Headline) -> tuple[str, str, str, str]:
    """(value, n, 95% interval, months) as the CLI summary prints them."""
    if h.value is None:
        return ("n/a", "0" if h.n is None else f"{h.n:,.0f}", "", "" if h.first_month is None
                else f"{h.first_month}..{h.last_month}")
    if h.unit == "per10k":
        value = f"{h.value:.1f}"
        interval = f"{h.interval[0]:.1f}-{h.interval[1]:.1f}" if h.interval else ""
    else:
        value = f"{h.value:.1%}"
        interval = f"{h.interval[0]:.1%}-{h.interval[1]:.1%}" if h.interval else ""
    n = f"{h.n:,.0f} {h.n_unit}".strip()
    return value, n, interval, f"{h.first_month}..{h.last_month}"
