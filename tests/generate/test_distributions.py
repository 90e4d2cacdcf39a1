"""Distributions in the generated files are within tolerance of the published benchmarks the sample
data is sized on (docs/definitions.md#sample-data), and the
planted effects of ``_truth.json`` are visible in the raw files (computed here with DuckDB and
pandas from the files alone)."""

from __future__ import annotations

import glob
import json
from datetime import date

import duckdb
import pandas as pd
import pytest

from dagster_project.tools.sample_data import params as P
from dagster_project.tools.sample_data.generator import _Generator, generate
from dagster_project.lib.ingest.call_logs import HEADER_MAP


def _connect(root) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.sql(f"create table pol_all as select * from read_csv('{root}/policies/*.csv', header=true, "
            f"all_varchar=true, filename=true)")
    con.sql("create view pol as select * exclude (rn) from (select *, row_number() over "
            "(partition by policy_no order by filename desc) rn from pol_all) where rn = 1")
    con.sql(f"create table clm as select * from read_csv('{root}/claims/*.csv', header=true, all_varchar=true)")
    con.sql(f"create table sv as select * from read_json('{root}/surveys/*.jsonl', format='newline_delimited')")
    con.sql(f"create table cpl_all as select * from read_json('{root}/complaints/*.json', format='array', "
            f"filename=true)")
    con.sql("create view cpl as select * exclude (rn) from (select *, row_number() over "
            "(partition by complaint_no order by updated_ts desc) rn from cpl_all) where rn = 1")
    calls = pd.concat([pd.read_csv(f, encoding="gbk", dtype=str, keep_default_na=False)
                       for f in sorted(glob.glob(f"{root}/calls/*.csv"))]).rename(columns=HEADER_MAP)
    con.register("calls", calls)
    truth = json.loads((root / "_truth.json").read_text(encoding="utf-8"))
    # Earned exposure (policy-years inside the range) per policy, from the latest policy rows.
    con.sql(f"""create view expo as select policy_no, customer_id, branch_code, line_of_business lob,
        business_source src, premium::double premium,
        greatest(0, datediff('day', greatest(start_date::date, date '{truth['start']}'),
                             least(end_date::date, date '{truth['end']}')) + 1) / 365.0 as years
        from pol where status = 'ACTIVE'""")
    con.sql("""create view claim as select claim_no, any_value(policy_no) policy_no,
        bool_or(event_type = 'CANCELLED') cancelled, bool_or(event_type = 'REJECTED') rejected,
        max(case when event_type = 'ASSESSED' then amount::double end) assessed,
        sum(case when event_type = 'PAID' then amount::double else 0 end) paid,
        min(case when event_type = 'REPORTED' then event_ts::timestamp end) reported,
        min(case when event_type = 'SURVEYOR_ARRIVED' then event_ts::timestamp end) arrived,
        min(case when event_type = 'AGREED' then event_ts::timestamp end) agreed,
        min(case when event_type = 'PAID' then event_ts::timestamp end) first_paid
        from clm group by 1""")
    return con


def _one(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()[0]


# ------------------------------------------------------------------------------------------------
# A normal book: scale 0.3 over one year (about 30k policies issued, 7k claims).

@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_dist") / "landing"
    summary = generate(out, scale=0.3, start=date(2024, 1, 1), days=365, seed=21, progress=False)
    return _connect(out), summary


def test_policy_volume_and_renewals(book):
    con, summary = book
    issued_in_range = _one(con, "select count(distinct policy_no) from pol_all where issue_date >= '2024-01-01'")[0]
    assert issued_in_range == pytest.approx(0.3 * P.POLICIES_PER_YEAR_AT_SCALE_1, rel=0.1)
    renewal_rate = _one(con, """select avg((exists(select 1 from pol r where r.renewal_of = p.policy_no))::int)
        from pol p where status = 'ACTIVE' and end_date <= '2024-11-30'""")[0]
    assert 0.62 <= renewal_rate <= 0.72
    cancelled = _one(con, "select avg((status = 'CANCELLED')::int) from pol")[0]
    assert 0.01 < cancelled < 0.05
    per_customer = _one(con, """select max(n), avg((n > 1)::int) from (select customer_id, count(*) n from pol
        where status = 'ACTIVE' and start_date <= '2024-06-30' and end_date >= '2024-06-30' group by 1)""")
    assert per_customer[0] <= P.MAX_POLICIES_PER_CUSTOMER and 0.05 < per_customer[1] < 0.3
    cross = _one(con, "select count(*) from (select customer_id from pol group by 1 having count(distinct "
                      "line_of_business) > 1)")[0]
    assert cross > 500


def test_claim_frequency_severity_and_outcomes(book):
    con, _ = book
    freq = con.sql("""with n as (select policy_no, count(*) k from claim where not cancelled group by 1)
        select (lob = 'MOTOR' and src = 'DEALER') cluster, sum(coalesce(k, 0)) / sum(years) freq,
               sum(coalesce(paid, 0)) / sum(premium * years) loss_ratio
        from expo left join n using (policy_no) left join (select policy_no, sum(paid) paid from claim group by 1)
        using (policy_no) where lob = 'MOTOR' group by 1 order by 1""").fetchall()
    (_, motor_freq, motor_lr), (_, cluster_freq, cluster_lr) = freq
    assert motor_freq == pytest.approx(0.25, abs=0.02)
    assert cluster_freq / motor_freq == pytest.approx(3.0, rel=0.2)
    assert cluster_lr > 2 * motor_lr
    severity = """from claim join (select claim_no, any_value(injury) injury from clm group by 1) using (claim_no)
        join expo using (policy_no) where not cancelled and lob = 'MOTOR'"""
    mean_severity, injury = _one(con, f"select avg(assessed), avg((injury = 'Y')::int) {severity}")
    assert mean_severity == pytest.approx(7290, rel=0.15)  # heavy tail: the mean is noisy
    assert injury == pytest.approx(0.08, abs=0.015)
    # The two lognormal parts themselves (log-scale mean and sd are tight estimates).
    for flag, (mu, sigma) in (("N", P.SEVERITY_PD), ("Y", P.SEVERITY_INJURY)):
        m, s = _one(con, f"select avg(ln(assessed)), stddev(ln(assessed)) {severity} and injury = '{flag}'")
        assert m == pytest.approx(mu, abs=0.06 if flag == "N" else 0.15), flag
        assert s == pytest.approx(sigma, abs=0.05 if flag == "N" else 0.12), flag
    cancelled, rejected = _one(con, "select avg(cancelled::int), avg(rejected::int) from claim")
    assert cancelled == pytest.approx(P.REPORT_CANCEL_SHARE, abs=0.012)
    assert rejected == pytest.approx(P.REJECT_SHARE, abs=0.008)
    within_10 = _one(con, """select avg((first_paid <= agreed + interval 10 day)::int) from claim
        where first_paid is not null and first_paid < date '2024-12-01'""")[0]
    assert 0.965 <= within_10 <= 0.995  # Art. 23 breaches in 1–3 %


def test_stage_satisfaction_near_targets(book):
    con, _ = book
    rates = dict(con.sql("""select stage, avg((score >= 4)::int) from sv
        where stage <> 'SURVEY' or substr(claim_no, 3, 2) <> 'JL' group by 1""").fetchall())
    for stage in ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT"):
        assert rates[stage] == pytest.approx(P.STAGE_TARGETS[stage], abs=0.03), stage
    response = _one(con, """select (select count(*) from sv where stage = 'REPORT' and responded_ts < '2024-12-01')
        / (select count(*) from clm where event_type = 'REPORTED' and event_ts < '2024-12-01')""")[0]
    assert response == pytest.approx(P.SURVEY_RESPONSE_RATE, abs=0.03)
    with_phone = _one(con, r"select count(*) from sv where regexp_matches(comment, '1[3-9][0-9]{9}')")[0]
    assert with_phone > 0


def test_call_centre(book):
    con, _ = book
    inbound = con.sql("""select queue, avg((abandoned = '是')::int),
        avg(coalesce(try_strptime(answered_ts, '%Y/%m/%d %H:%M:%S')
             <= strptime(offered_ts, '%Y/%m/%d %H:%M:%S') + interval 20 second, false)::int)
        from calls where direction = '呼入' and queue <> 'COMPLAINT' group by 1""").fetchall()
    for queue, abandon, service_level in inbound:
        assert 0.03 <= abandon <= 0.08, queue
        assert 0.75 <= service_level <= 0.92, queue
    reach = _one(con, "select avg((outcome = '接通')::int) from calls where call_type = '回访'")[0]
    assert 0.75 <= reach <= 0.85
    per_claim = _one(con, """select (select count(*) from calls where queue = 'CLAIM_REPORT' and offered_ts < '2024/12/01')
        / (select count(*) from clm where event_type = 'REPORTED' and event_ts < '2024-12-01')""")[0]
    assert per_claim == pytest.approx(1.1, abs=0.08)
    inquiries = _one(con, "select count(*) from calls where call_type = '咨询'")[0]
    policy_years = _one(con, "select sum(years) from expo")[0]
    assert inquiries / policy_years == pytest.approx(P.INQUIRIES_PER_POLICY_YEAR * (1 + 0.15 / 7), rel=0.1)


def test_planted_slow_survey_branch(book):
    con, summary = book
    slow = summary["truth"]["slow_survey_branch"]
    by_branch = con.sql("""select substr(claim_no, 3, 2) branch, count(*) n, avg((score >= 4)::int) csat
        from sv where stage = 'SURVEY' group by 1 order by csat""").fetchall()
    assert by_branch[0][0] == slow
    assert by_branch[0][2] == pytest.approx(P.SLOW_SURVEY_SATISFACTION, abs=0.06)
    assert by_branch[1][2] - by_branch[0][2] > 0.15
    arrival = dict(con.execute("""select substr(claim_no, 3, 2) = ? slow, median(datediff('minute', reported, arrived))
        from claim where arrived is not null group by 1""", [slow]).fetchall())
    assert arrival[True] > 2 * arrival[False]
    audits = pd.concat([pd.read_excel(f, header=1) for f in sorted(glob.glob(str(summary["out_dir"]) + "/audits/*.xlsx"))])
    assert len(audits) / (20 * 12) == pytest.approx(P.AUDITS_PER_BRANCH_MONTH, rel=0.2)
    pass_rate = audits.groupby(audits.branch_code == slow)["passed"].apply(lambda s: (s == "Y").mean())
    assert pass_rate[True] < pass_rate[False] - 0.2


# ------------------------------------------------------------------------------------------------
# A complaint-heavy book (30× the complaint rate) so that complaint shares and the win-back effect
# have enough tickets on a small, fast book.

@pytest.fixture(scope="module")
def complaint_book(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_complaints") / "landing"
    summary = _Generator(out, scale=0.2, start=date(2024, 1, 1), days=540, seed=3, progress=False,
                         complaints_per_10k=450).run()
    return _connect(out), summary


def test_complaint_shares_and_handling(complaint_book):
    con, _ = complaint_book
    n, valid, claims_related, regulator = _one(con, """select count(*),
        avg((is_accepted and not is_duplicate and not is_withdrawn and liability in ('AT_FAULT', 'PARTIAL'))::int),
        avg((category in ('CLAIM_DISPUTE', 'CLAIM_DELAY', 'ASSESSMENT_DISPUTE'))::int),
        avg((channel = 'REGULATOR_12378')::int) from cpl where received_ts < '2025-05-01'""")
    assert n > 1000
    assert valid == pytest.approx(0.45, abs=0.05)
    assert claims_related == pytest.approx(P.CLAIM_RELATED_COMPLAINT_SHARE, abs=0.06)
    expected = P.REGULATOR_ROUTED_PER_10K_POLICY_YEARS / P.COMPLAINTS_PER_10K_POLICY_YEARS
    assert regulator == pytest.approx(expected, abs=0.012)
    handled = """select branch_code, datediff('second', received_ts::timestamp, closed_ts::timestamp) / 86400.0 hdays,
        extension_level from cpl where status = 'CLOSED' and is_accepted and not is_withdrawn and not is_duplicate"""
    median, within_15, longest, ext_ok = _one(con, f"""select median(hdays), avg((hdays <= 15)::int), max(hdays),
        avg((extension_level >= 1)::int) filter (where hdays > 15) from ({handled}) where branch_code <> 'LN'""")
    assert median == pytest.approx(6, abs=1)
    assert within_15 == pytest.approx(0.92, abs=0.04)
    assert longest <= P.HANDLING_DAYS_CAP + 1
    assert 0.7 <= ext_ok <= 0.95
    p90 = con.sql(f"""select branch_code, quantile_cont(hdays, 0.9) p90 from ({handled}) group by 1
        having count(*) >= 20 order by p90 desc""").fetchall()
    assert p90[0][0] == "LN" and p90[0][1] > 25


def test_reappearing_tickets_have_increasing_updates(complaint_book):
    con, _ = complaint_book
    states = con.sql("""select complaint_no, filename, updated_ts, received_ts, status,
        lag(updated_ts) over w prev_updated, lag(filename) over w prev_file, lag(received_ts) over w prev_received,
        lag(status) over w prev_status
        from cpl_all window w as (partition by complaint_no order by filename)""").df()
    repeated = states[states.prev_file.notna()]
    assert len(repeated) > 1000  # tickets do come back
    assert (repeated.updated_ts > repeated.prev_updated).all()
    assert (repeated.received_ts == repeated.prev_received).all()
    assert not ((repeated.prev_status == "CLOSED") & (repeated.status == "OPEN")).any()
    first = states[states.prev_file.isna()]
    assert (first.updated_ts >= first.received_ts).all()


def test_complaint_stage_satisfaction(complaint_book):
    con, _ = complaint_book
    n, csat = _one(con, "select count(*), avg((score >= 4)::int) from sv where stage = 'COMPLAINT'")
    assert n > 300
    assert csat == pytest.approx(P.STAGE_TARGETS["COMPLAINT"], abs=0.07)


def test_planted_winback(complaint_book):
    """Complainants handled fast renew far more often than those handled slowly: policies of the
    customer falling due 1–12 months after the complaint closed."""
    con, summary = complaint_book
    planted = summary["truth"]["winback_fast_vs_slow"]
    rates = dict((b, (r, n)) for b, r, n in con.sql(f"""
        with c as (select customer_id, closed_ts::timestamp closed,
                datediff('second', received_ts::timestamp, closed_ts::timestamp) / 86400.0 hdays
            from cpl join pol using (policy_no) where cpl.status = 'CLOSED' and is_accepted and not is_withdrawn
            and not is_duplicate),
        due as (select p.customer_id, p.end_date::date end_date,
                exists(select 1 from pol r where r.renewal_of = p.policy_no) renewed
            from pol p where p.status = 'ACTIVE' and p.end_date <= '2025-05-24')
        select case when hdays <= {planted['fast_days']} then 'fast' when hdays > {planted['slow_days']} then 'slow'
               else 'mid' end bucket, avg(renewed::int), count(*)
        from c join due on due.customer_id = c.customer_id and due.end_date > c.closed::date + 31
             and due.end_date <= c.closed::date + 365 group by 1""").fetchall())
    assert rates["fast"][1] > 200 and rates["slow"][1] > 30
    assert rates["fast"][0] == pytest.approx(planted["fast_renewal_rate"], abs=0.08)
    assert rates["fast"][0] - rates["slow"][0] > 0.2
