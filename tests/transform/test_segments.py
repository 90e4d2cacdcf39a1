"""Customer segments, underwriting watch list, high-risk profile and branch scorecard.

The segment facts are recomputed here in plain Python from ``raw.policies`` and
``raw.claim_events`` (not from the dbt SQL) following the written rules
(docs/definitions.md#customer-segments), and compared with ``marts.dim_customer_segment``
customer by customer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import pytest

# The defaults of the dbt vars (dbt/dbt_project.yml, customer segmentation block).
WINDOW_YEARS = 3
TARGET_LR = 0.75
HIGH_RISK_LR = 1.0
HIGH_RISK_CLAIMS_LATEST_YEAR = 3
SUB_HEALTHY_CLAIMS_LATEST_YEAR = 2
INJURY_HIGH_RISK_AMOUNT = 50_000
VALUE_TOP_SHARE = 0.2
VALUE_MIN_LINES = 2
VALUE_VEHICLE_PRICE = 300_000
MIN_EARNED_PREMIUM_FOR_LR = 1000
HIGH_RISK_MIN_CLAIMS_FOR_LR = 2
MIN_EXPOSURE_YEARS = 1.0

SEGMENT_MARTS = (
    "dim_customer_segment", "mart_segment_summary", "mart_underwriting_watchlist",
    "mart_high_risk_profile", "mart_branch_scorecard",
)
PII_COLUMN_NAMES = {"customer_id", "customer_name", "id_card_no", "phone", "complainant_name",
                    "complainant_phone", "name"}


# --------------------------------------------------------------------------------------------
# Pure helpers (the written rules, in Python)
# --------------------------------------------------------------------------------------------

def whole_years_between(start: date, end: date) -> int:
    """Whole years from start to end, counted like an age."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap target year
        return day.replace(year=day.year + years, day=28)


def pro_rata(amount: float, term_start: date, term_end: date, cover_end: date,
             period_start: date, period_end_exclusive: date) -> float:
    """amount x days of cover inside the period / days of the term (same operation order as SQL)."""
    term_days = (term_end - term_start).days
    if term_days <= 0:
        return 0.0
    overlap = max(0, (min(cover_end, period_end_exclusive) - max(term_start, period_start)).days)
    return float(amount) * float(overlap) / term_days


def segment_of(claim_count: int, loss_ratio: float | None, claims_latest_year: int,
               has_large_injury_claim: bool, exposure_years: float = 1.0) -> str:
    if exposure_years < MIN_EXPOSURE_YEARS:
        return "NOT_YET_RATED"
    if claim_count == 0:
        return "QUALITY"
    if (loss_ratio is not None and loss_ratio > HIGH_RISK_LR and claim_count >= HIGH_RISK_MIN_CLAIMS_FOR_LR) \
            or claims_latest_year >= HIGH_RISK_CLAIMS_LATEST_YEAR or has_large_injury_claim:
        return "HIGH_RISK"
    if (loss_ratio is not None and loss_ratio > TARGET_LR) \
            or claims_latest_year == SUB_HEALTHY_CLAIMS_LATEST_YEAR:
        return "SUB_HEALTHY"
    return "HEALTHY"


def test_pure_rules():
    assert whole_years_between(date(2022, 7, 1), date(2025, 6, 30)) == 2
    assert whole_years_between(date(2022, 6, 30), date(2025, 6, 30)) == 3
    assert pro_rata(3660, date(2024, 1, 1), date(2025, 1, 1), date(2024, 4, 1),
                    date(2024, 1, 1), date(2025, 4, 1)) == 910.0
    assert segment_of(0, None, 0, False) == "QUALITY"
    assert segment_of(1, 1.0, 0, False) == "SUB_HEALTHY"
    assert segment_of(1, 5.0, 0, False) == "SUB_HEALTHY"  # one claim above the premium: not high risk
    assert segment_of(2, 1.0000001, 0, False) == "HIGH_RISK"
    assert segment_of(0, None, 0, False, exposure_years=0.99) == "NOT_YET_RATED"
    assert segment_of(3, 3.0, 3, True, exposure_years=0.5) == "NOT_YET_RATED"
    assert segment_of(1, None, 2, False) == "SUB_HEALTHY"
    assert segment_of(5, 0.1, 1, False) == "HEALTHY"


# --------------------------------------------------------------------------------------------
# Independent recomputation from raw tables
# --------------------------------------------------------------------------------------------

@dataclass
class Claim:
    claim_no: str
    policy_no: str | None = None
    first_ts: object = None
    reported_ts: object = None
    estimate: float | None = None
    last_assessed: tuple | None = None  # (ts, amount)
    paid_sum: float = 0.0
    paid: bool = False
    cancelled: bool = False
    rejected: bool = False
    injury: bool = False
    last_closed: object = None
    last_reopened: object = None


@dataclass
class CustomerFacts:
    policies: list = field(default_factory=list)
    claims: list = field(default_factory=list)


def _read(con, sql):
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def recompute_customer_facts(con, salt: str, as_of: date, first_data_date: date,
                             claims_start: date) -> dict[str, dict]:
    # the window starts no earlier than the first day of claim data (premium and claims over the
    # same exposure window)
    window_start = max(add_years(as_of, -WINDOW_YEARS) + timedelta(days=1), first_data_date, claims_start)
    latest_year_start = add_years(as_of, -1) + timedelta(days=1)
    end_excl = as_of + timedelta(days=1)

    # policies: the latest file wins (partition, then line); cancellation date = first
    # partition showing CANCELLED
    latest: dict[str, dict] = {}
    cancelled_on: dict[str, date] = {}
    for row in _read(con, "select * from raw.policies order by _partition, _source_line"):
        latest[row["policy_no"]] = row
        if row["status"] == "CANCELLED":
            day = date.fromisoformat(row["_partition"])
            cancelled_on[row["policy_no"]] = min(day, cancelled_on.get(row["policy_no"], day))
    policy_customer = {}
    customers: dict[str, CustomerFacts] = defaultdict(CustomerFacts)
    for policy_no, p in latest.items():
        key = hashlib.sha256(f"{salt}|{p['customer_id']}".encode()).hexdigest()
        policy_customer[policy_no] = key
        start, end = p["start_date"], p["end_date"]
        cover_end = end
        if p["status"] == "CANCELLED":
            cover_end = min(end, max(start, cancelled_on.get(policy_no, start)))
        if not (p["issue_date"] <= as_of and cover_end > start and cover_end > window_start):
            continue
        premium = float(p["premium"])
        term_years = max(1, round(((end - start).days + 1) / 365.0))
        customers[key].policies.append({
            "premium": premium,
            "exposure": pro_rata(term_years, start, end, cover_end, window_start, end_excl),
            "policy_no": policy_no, "branch_code": p["branch_code"],
            "line": p["line_of_business"], "source": p["business_source"],
            "issue_date": p["issue_date"], "start_date": start,
            "vehicle_price": None if p["vehicle_price"] is None else float(p["vehicle_price"]),
            "net": pro_rata(premium, start, end, cover_end, start, cover_end),
            "earned": pro_rata(premium, start, end, cover_end, window_start, end_excl),
            "annual": pro_rata(premium, start, end, cover_end, latest_year_start, end_excl),
            "written_in_window": window_start <= p["issue_date"] <= as_of,
        })

    # claim events: a key repeated in a later file is the same event (latest wins)
    events = {}
    for ev in _read(con, "select * from raw.claim_events order by _partition, _source_line"):
        events[ev["event_id"]] = ev
    claims: dict[str, Claim] = {}
    for ev in sorted(events.values(), key=lambda e: (e["event_ts"], e["event_id"])):
        c = claims.setdefault(ev["claim_no"], Claim(ev["claim_no"]))
        if c.first_ts is None:
            c.first_ts, c.policy_no = ev["event_ts"], ev["policy_no"]
        kind, amount = ev["event_type"], ev["amount"]
        c.injury = c.injury or ev["injury"] == "Y"
        if kind == "REPORTED" and c.reported_ts is None:
            c.reported_ts = ev["event_ts"]
            c.estimate = None if amount is None else float(amount)
        elif kind == "ASSESSED" and amount is not None:
            c.last_assessed = (ev["event_ts"], float(amount))
        elif kind == "PAID":
            c.paid = True
            c.paid_sum += float(amount or 0)
        elif kind == "CANCELLED":
            c.cancelled = True
        elif kind == "REJECTED":
            c.rejected = True
        elif kind == "CLOSED":
            c.last_closed = ev["event_ts"]
        elif kind == "REOPENED":
            c.last_reopened = ev["event_ts"]
    for c in claims.values():
        if c.reported_ts is None or c.policy_no not in policy_customer:
            continue
        report_date = c.reported_ts.date()
        if not (window_start <= report_date <= as_of):
            continue
        closed = c.last_closed is not None and (c.last_reopened is None or c.last_closed >= c.last_reopened)
        zero_closed = closed and not c.paid and not c.rejected and not c.cancelled
        counted = c.paid or not (closed or c.cancelled or c.rejected or zero_closed)
        if c.cancelled or (c.rejected and not c.paid):
            incurred = 0.0
        elif c.paid:
            incurred = c.paid_sum
        elif c.last_assessed is not None:
            incurred = c.last_assessed[1]
        else:
            incurred = c.estimate or 0.0
        customers[policy_customer[c.policy_no]].claims.append(
            {"report_date": report_date, "counted": counted, "incurred": incurred, "injury": c.injury})

    out = {}
    for key, facts in customers.items():
        if not facts.policies:
            continue  # claims only on policies outside the window: not a segmented customer
        pols = facts.policies
        primary = max(pols, key=lambda p: (p["net"], p["issue_date"], p["policy_no"]))
        counted = [c for c in facts.claims if c["counted"]]
        earned = sum(p["earned"] for p in pols)
        incurred = sum(c["incurred"] for c in counted)
        injury_amounts = [c["incurred"] for c in counted if c["injury"]]
        last_claim = max((c["report_date"] for c in counted), default=None)
        first_cover = max(min(p["start_date"] for p in pols), window_start)
        claims_latest_year = sum(1 for c in counted if c["report_date"] >= latest_year_start)
        loss_ratio = incurred / earned if earned >= MIN_EARNED_PREMIUM_FOR_LR else None
        large_injury = bool(injury_amounts) and max(injury_amounts) >= INJURY_HIGH_RISK_AMOUNT
        vehicle_prices = [p["vehicle_price"] for p in pols if p["vehicle_price"] is not None]
        out[key] = {
            "branch_code": primary["branch_code"], "primary_line": primary["line"],
            "business_source": primary["source"], "policies": len(pols),
            "lines_held": len({p["line"] for p in pols}),
            "written_premium": sum(p["premium"] for p in pols if p["written_in_window"]),
            "net_written_premium": sum(p["net"] for p in pols if p["written_in_window"]),
            "earned_exposure_years": sum(p["exposure"] for p in pols),
            "earned_premium": earned, "annual_premium": sum(p["annual"] for p in pols),
            "max_vehicle_price": max(vehicle_prices) if vehicle_prices else None,
            "claim_count": len(counted), "claims_latest_year": claims_latest_year,
            "incurred_loss": incurred, "loss_ratio": loss_ratio,
            "has_large_injury_claim": large_injury,
            "claim_free_years": min(WINDOW_YEARS, max(0, whole_years_between(last_claim or first_cover, as_of))),
            "segment": segment_of(len(counted), loss_ratio, claims_latest_year, large_injury,
                                  sum(p["exposure"] for p in pols)),
        }
    # value tier: top share of annual premium within branch x primary line (ties share the
    # better rank), or several lines, or an expensive vehicle
    groups = defaultdict(list)
    for key, row in out.items():
        groups[(row["branch_code"], row["primary_line"])].append(row["annual_premium"])
    for row in out.values():
        peers = groups[(row["branch_code"], row["primary_line"])]
        rank = 1 + sum(1 for v in peers if v > row["annual_premium"])
        row["value_tier"] = "HIGH" if (
            (row["annual_premium"] > 0 and rank <= VALUE_TOP_SHARE * len(peers))
            or row["lines_held"] >= VALUE_MIN_LINES
            or (row["max_vehicle_price"] or 0) >= VALUE_VEHICLE_PRICE
        ) else "LOW"
    return out


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def warehouse(built_settings):
    con = duckdb.connect(str(built_settings.work_db), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def dim(warehouse) -> dict[str, dict]:
    return {r["customer_key"]: r for r in _read(warehouse, "select * from marts.dim_customer_segment")}


@pytest.fixture(scope="module")
def recomputed(warehouse, built_settings) -> dict[str, dict]:
    as_of, first_day = warehouse.execute(
        "select as_of_date, first_data_date from intermediate.int_warehouse__as_of").fetchone()
    claims_start = warehouse.execute("select min(event_ts)::date from raw.claim_events").fetchone()[0]
    # the as-of date is the last day of the data: no policy issued and no claim reported later
    max_issue, max_event = warehouse.execute(
        "select (select max(issue_date) from raw.policies), (select max(event_ts)::date from raw.claim_events)"
    ).fetchone()
    assert as_of >= max_issue and as_of >= max_event
    return recompute_customer_facts(warehouse, built_settings.pii_salt, as_of, first_day, claims_start)


# --------------------------------------------------------------------------------------------
# Tests on the built tiny warehouse
# --------------------------------------------------------------------------------------------

SEGMENT_MODELS = ("int_customers__period_facts",) + SEGMENT_MARTS


def test_segment_dbt_unit_tests_pass(built_settings, tmp_path):
    """The dbt unit tests of the segment and scorecard formulas (one per rule table). Runs before
    any test of this module opens the work file read-only: dbt needs it read-write."""
    from dagster_project.lib.transform.dbt_project import run_dbt

    selectors = [f"test_type:unit,{model}" for model in SEGMENT_MODELS]
    result = run_dbt(built_settings, ["test", "--select", *selectors], target_dir=tmp_path / "dbt_target")
    # 9 segment and scorecard rules + the scorecard's follow-up, contact-resolution and index columns
    assert result["statuses"].get("pass", 0) == 10, result["statuses"]


def test_customer_facts_match_independent_recomputation(dim, recomputed):
    assert len(dim) > 1000, "the tiny data set should give well over a thousand customers"
    assert set(dim) == set(recomputed)
    exact = ("branch_code", "primary_line", "business_source", "policies", "lines_held",
             "claim_count", "claims_latest_year", "has_large_injury_claim", "claim_free_years",
             "segment", "value_tier")
    amounts = ("written_premium", "net_written_premium", "earned_premium", "annual_premium", "incurred_loss",
               "loss_ratio", "max_vehicle_price", "earned_exposure_years")
    mismatches = []
    for key, expected in recomputed.items():
        actual = dim[key]
        for col in exact:
            if actual[col] != expected[col]:
                mismatches.append((key[:12], col, actual[col], expected[col]))
        for col in amounts:
            a, e = actual[col], expected[col]
            if (a is None) != (e is None) or (a is not None and abs(a - e) > 1e-9 * max(1.0, abs(e))):
                mismatches.append((key[:12], col, a, e))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:10]}"


def test_recomputation_covers_every_segment_and_rule(recomputed):
    """The comparison above is only meaningful if the data exercises every branch of the rules."""
    segments = defaultdict(int)
    for row in recomputed.values():
        segments[row["segment"]] += 1
    assert set(segments) == {"QUALITY", "HEALTHY", "SUB_HEALTHY", "HIGH_RISK", "NOT_YET_RATED"}, segments
    # a single claim above the premium is seen, and rated SUB_HEALTHY rather than HIGH_RISK
    assert any(r["claim_count"] == 1 and (r["loss_ratio"] or 0) > HIGH_RISK_LR and r["segment"] == "SUB_HEALTHY"
               for r in recomputed.values())
    assert any(r["loss_ratio"] is None and r["claim_count"] > 0 for r in recomputed.values())
    assert any(r["claims_latest_year"] >= 2 for r in recomputed.values())
    assert {r["value_tier"] for r in recomputed.values()} == {"HIGH", "LOW"}


def test_every_customer_has_exactly_one_segment(warehouse):
    rows, keys, bad, quality_mismatch = warehouse.execute("""
        select count(*), count(distinct customer_key),
               count(*) filter (where segment not in ('QUALITY','HEALTHY','SUB_HEALTHY','HIGH_RISK','NOT_YET_RATED')
                                or segment is null),
               count(*) filter (where segment <> 'NOT_YET_RATED' and (segment = 'QUALITY') <> (claim_count = 0))
        from marts.dim_customer_segment""").fetchone()
    assert rows == keys > 0
    assert bad == 0
    assert quality_mismatch == 0  # a rated customer is QUALITY <=> claim_count = 0
    # never QUALITY without a full policy-year of exposure
    assert warehouse.execute("""select count(*) from marts.dim_customer_segment
        where segment = 'QUALITY' and earned_exposure_years < 1.0""").fetchone()[0] == 0


def test_segment_summary_reconciles_with_dimension(warehouse):
    dim_row = warehouse.execute("""
        select count(*), sum(earned_premium), sum(incurred_loss) from marts.dim_customer_segment""").fetchone()
    summary_row = warehouse.execute("""
        select sum(customers), sum(earned_premium), sum(incurred_loss) from marts.mart_segment_summary""").fetchone()
    assert summary_row[0] == dim_row[0]
    assert summary_row[1] == pytest.approx(dim_row[1], rel=1e-9)
    assert summary_row[2] == pytest.approx(dim_row[2], rel=1e-9)
    # shares of a branch x line add up to 1
    worst = warehouse.execute("""
        select max(abs(s - 1)) from (
            select sum(customer_share) as s from marts.mart_segment_summary group by branch_code, line)""").fetchone()[0]
    assert worst < 1e-9


def test_high_risk_cluster_has_lift_above_one(warehouse, built_settings):
    truth = json.loads((built_settings.landing_dir / "_truth.json").read_text(encoding="utf-8"))
    cluster = truth["high_risk_cluster"]
    value = f"{cluster['business_source']}|{cluster['line_of_business']}"
    row = warehouse.execute("""
        select customers, high_risk_customers, lift from marts.mart_high_risk_profile
        where attribute = 'business_source_x_line' and value = ?""", [value]).fetchone()
    assert row is not None, f"no profile row for the planted cluster {value}"
    customers, high_risk, lift = row
    assert customers > 0 and high_risk > 0
    assert lift > 1, f"planted high-risk cluster {value} has lift {lift}"
    # and it is the most over-represented well-populated combination
    top = warehouse.execute("""
        select value from marts.mart_high_risk_profile
        where attribute = 'business_source_x_line' and not low_sample
        order by lift desc limit 1""").fetchone()
    assert top is not None and top[0] == value


def test_high_risk_profile_lift_is_share_ratio(warehouse):
    worst = warehouse.execute("""
        select max(abs(lift - (high_risk_customers::double / total_high_risk_customers)
                               / (customers::double / total_customers)))
        from marts.mart_high_risk_profile""").fetchone()[0]
    assert worst < 1e-12
    # every attribute partitions the customers
    per_attribute = warehouse.execute("""
        select attribute, sum(customers), min(total_customers) from marts.mart_high_risk_profile
        group by attribute""").fetchall()
    # the portfolio is the rated customers; high risk is a clear minority of the claimants
    rated, claimants, high_risk = warehouse.execute("""select count(*) filter (where segment <> 'NOT_YET_RATED'),
        count(*) filter (where segment <> 'NOT_YET_RATED' and claim_count > 0),
        count(*) filter (where segment = 'HIGH_RISK') from marts.dim_customer_segment""").fetchone()
    share, total, total_claimants = warehouse.execute("""select distinct high_risk_share_of_claimants,
        total_customers, total_claimants from marts.mart_high_risk_profile""").fetchone()
    assert (total, total_claimants) == (rated, claimants)
    assert share == pytest.approx(high_risk / claimants) and share <= 0.35
    assert len(per_attribute) == 5
    for attribute, total, expected in per_attribute:
        assert total == expected, attribute


def test_watchlist_rows_follow_the_rules(warehouse):
    rows = _read(warehouse, """
        select w.*, s.segment as dim_segment, s.value_tier as dim_value_tier
        from marts.mart_underwriting_watchlist as w
        join marts.dim_customer_segment as s using (customer_key)""")
    assert rows, "the tiny data set should put some renewals on the watch list"
    renewed = {r[0] for r in warehouse.execute(
        "select distinct renewal_of from raw.policies where renewal_of is not null").fetchall()}
    action = {("HIGH_RISK", "LOW"): "SURCHARGE_OR_DECLINE", ("HIGH_RISK", "HIGH"): "ACCOUNT_REVIEW",
              ("SUB_HEALTHY", "LOW"): "RETAIN_AND_WATCH", ("SUB_HEALTHY", "HIGH"): "RETAIN_AND_WATCH"}
    for r in rows:
        assert r["segment"] == r["dim_segment"] and r["segment"] in ("HIGH_RISK", "SUB_HEALTHY")
        assert -30 <= r["days_to_expiry"] <= 90
        assert (r["end_date"] - r["as_of_date"]).days == r["days_to_expiry"]
        assert r["policy_no"] not in renewed
        assert r["action_code"] == action[(r["dim_segment"], r["dim_value_tier"])]
        assert r["reason"] and r["recommended_action"]
    priorities = sorted(r["review_priority"] for r in rows)
    assert priorities == list(range(1, len(rows) + 1))


def test_scorecard_ranks_are_one_to_n_per_month(warehouse):
    by_month = defaultdict(list)
    for month, rank, n, score in warehouse.execute("""
            select month, service_evaluation_rank, branches_scored_in_month, service_evaluation_score
            from marts.mart_branch_scorecard""").fetchall():
        by_month[month].append((rank, n, score))
    assert len(by_month) >= 12
    for month, ranks in by_month.items():
        n = ranks[0][1]
        # only scored branch-months are ranked, 1..n; an unscored one has neither score nor rank
        assert sorted(r for r, _, _ in ranks if r is not None) == list(range(1, n + 1)), month
        assert all((r is None) == (s is None) for r, _, s in ranks), month
        # rank 1 has the best score of the month
        scored = sorted((r, s) for r, _, s in ranks if s is not None)
        assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True), month
        assert all(0 <= s <= 100 for _, s in scored)


def test_scorecard_score_recomputed_from_indicators(warehouse):
    """The weighted score equals sum(w x score) / sum(w) over present indicators (default weights)."""
    weights = {"score_manual_answer": 0.10, "score_agent_satisfaction": 0.10,
               "score_inquiry_handling": 0.10, "score_claim_closure": 0.15,
               "score_payment_cycle": 0.15, "score_claim_acceptance": 0.15,
               "score_complaint_rate": 0.125, "score_timely_handling": 0.125}
    rows = _read(warehouse, "select * from marts.mart_branch_scorecard")
    checked = 0
    for r in rows:
        present = {k: w for k, w in weights.items() if r[k] is not None}
        # no composite over fewer than all 8 indicators: flagged instead of renormalised
        assert r["is_scored"] == (len(present) == 8)
        if len(present) < 8:
            assert r["service_evaluation_score"] is None and r["service_rating"] is None
            assert r["indicators_missing"] and r["indicators_scored"] == len(present)
            continue
        expected = sum(r[k] * w for k, w in present.items()) / sum(present.values())
        # the model rounds the score to 4 decimals (so floating point cannot push it past 100)
        assert r["service_evaluation_score"] == pytest.approx(round(expected, 4), abs=1e-9)
        if r["manual_answer_rate"] is not None:
            assert r["score_manual_answer"] == pytest.approx(100 * r["manual_answer_rate"], rel=1e-12)
        # the complaint-rate score is continuous in the trailing-window rate (no 0/100 cliff)
        rate = r["complaints_per_10k_policy_years_window"]
        assert r["score_complaint_rate"] == pytest.approx(max(0.0, min(100.0, 100 * (150 - rate) / 150)), abs=1e-9)
        checked += 1
    assert checked > 0
    scores = {round(r["score_complaint_rate"], 6) for r in rows if r["score_complaint_rate"] is not None}
    assert len(scores) > 20 and sum(1 for v in scores if 0 < v < 100) > 20


def test_no_pii_in_segment_marts(warehouse, built_settings):
    phone = re.compile(r"1[3-9]\d{9}")
    id_number = re.compile(r"\d{17}[\dXx]")
    for mart in SEGMENT_MARTS:
        columns = warehouse.execute(f"describe marts.{mart}").fetchall()
        names = {c[0] for c in columns}
        assert not names & PII_COLUMN_NAMES, (mart, names & PII_COLUMN_NAMES)
        for name, col_type, *_ in columns:
            if col_type != "VARCHAR":
                continue
            values = [v for (v,) in warehouse.execute(
                f'select distinct "{name}" from marts.{mart} where "{name}" is not null').fetchall()]
            hits = [v for v in values if phone.search(v) or id_number.search(v)]
            if name == "customer_key":
                # a 64-hex salted hash may contain digit runs; check its shape instead
                assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values)
                continue
            assert not hits, (mart, name, hits[:3])
    # the key is salted: no key is the bare sha256 of a customer id
    ids = [r[0] for r in warehouse.execute("select distinct customer_id from raw.policies").fetchall()]
    bare = {hashlib.sha256(i.encode()).hexdigest() for i in ids}
    keys = {r[0] for r in warehouse.execute("select customer_key from marts.dim_customer_segment").fetchall()}
    assert keys and not (bare & keys)
