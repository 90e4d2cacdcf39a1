-- Claim cycle per branch x month of the claim's first report (docs/definitions.md#mart_claim_cycle).
-- Every branch x month of the data appears (zero claims -> counts 0, rates null).
-- Legal clocks (docs/definitions.md#legal-clocks): Insurance Law art. 23 counts calendar days from
-- the day after the event; a period ending on a weekend or public holiday ends on the next working
-- day (macro legal_period_end). Payment is due within 10 days of the settlement agreement; the
-- coverage decision within 30 days of the claim and its documents (clock from DOCS_COMPLETE, the
-- Supreme People's Court's reading in Interpretation II art. 15).
-- A report month is mature when at most claim_month_mature_open_share of its claims (cancelled
-- reports aside) are still open on the as-of date: cohort measures of an immature month still move.
-- Rolling closure rate (滚动立案结案率): claims reported in the 12 months ending with the month,
-- excluding cancelled (注销) and zero-closed (零结案) claims, that were closed (first CLOSED event)
-- by the month's last day, over those claims.
with claims as (
    select
        m.*,
        {{ legal_period_end('cast(m.agreed_ts as date)', var('payment_within_days')) }} as payment_due_date,
        {{ legal_period_end('cast(m.docs_complete_ts as date)', var('decision_within_days')) }} as decision_due_date
    from {{ ref('int_claims__milestones') }} as m
),

spine as (
    select b.code as branch_code, m.month, m.month_end_date
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
),

monthly as (
    select
        branch_code,
        report_month as month,
        count(*) as claims_reported,
        count(case when is_closed then 1 end) as claims_closed,
        {{ percentile_cont('arrival_minutes', 0.5) }} as arrival_minutes_p50,
        {{ percentile_cont('arrival_minutes', 0.9) }} as arrival_minutes_p90,
        {{ percentile_cont('report_to_assessment_hours', 0.5) }} as report_to_assessment_hours_p50,
        {{ percentile_cont('report_to_payment_days', 0.5) }} as report_to_payment_days_p50,
        {{ percentile_cont('report_to_payment_days', 0.9) }} as report_to_payment_days_p90,
        {{ percentile_cont('agreement_to_payment_days', 0.5) }} as agreement_to_payment_days_p50,
        -- Insurance Law art. 23: payment within 10 days of the settlement agreement
        count(case when agreed_ts is not null and paid_ts is not null then 1 end) as paid_after_agreement,
        count(case when agreed_ts is not null and cast(paid_ts as date) <= payment_due_date then 1 end) as paid_within_10d,
        -- ... and a coverage decision (agreement or rejection) within 30 days of the documents
        count(case when decided_ts is not null and docs_complete_ts is not null then 1 end) as decided_claims,
        count(case when docs_complete_ts is not null and cast(decided_ts as date) <= decision_due_date then 1 end)
            as decided_within_30d,
        count(case when not is_cancelled then 1 end) as claims_not_cancelled,
        count(case when not is_cancelled and not is_closed then 1 end) as claims_open,
        -- 理赔获赔率: paid / (paid + rejected), cancelled reports excluded
        count(case when is_paid and not is_cancelled then 1 end) as paid_claims,
        count(case when is_rejected and not is_paid and not is_cancelled then 1 end) as rejected_claims,
        count(case when is_reopened then 1 end) as reopened_claims
    from claims
    group by branch_code, report_month
),

rolling as (
    select
        s.branch_code,
        s.month,
        count(c.claim_no) as rolling_claims_base,
        count(case when cast(c.closed_ts as date) <= s.month_end_date then 1 end) as rolling_claims_closed
    from spine as s
    left join claims as c
        on c.branch_code = s.branch_code
        and c.report_month <= s.month
        and c.report_month > cast({{ dbt.dateadd('month', -var('rolling_closure_months'), 's.month') }} as date)
        and not c.is_cancelled
        and not c.is_zero_closed
    group by s.branch_code, s.month
)

select
    s.branch_code,
    s.month,
    coalesce(m.claims_reported, 0) as claims_reported,
    coalesce(m.claims_closed, 0) as claims_closed,
    r.rolling_claims_base,
    r.rolling_claims_closed,
    {{ safe_ratio('r.rolling_claims_closed', 'r.rolling_claims_base') }} as closure_rate,
    m.arrival_minutes_p50,
    m.arrival_minutes_p90,
    m.report_to_assessment_hours_p50,
    m.report_to_payment_days_p50,
    m.report_to_payment_days_p90,
    m.agreement_to_payment_days_p50,
    coalesce(m.paid_after_agreement, 0) as paid_after_agreement,
    coalesce(m.paid_within_10d, 0) as paid_within_10d,
    {{ safe_ratio('m.paid_within_10d', 'm.paid_after_agreement') }} as paid_within_10d_share,
    coalesce(m.decided_claims, 0) as decided_claims,
    coalesce(m.decided_within_30d, 0) as decided_within_30d,
    {{ safe_ratio('m.decided_within_30d', 'm.decided_claims') }} as decided_within_30d_share,
    coalesce(m.paid_claims, 0) as paid_claims,
    coalesce(m.rejected_claims, 0) as rejected_claims,
    {{ safe_ratio('m.paid_claims', 'm.paid_claims + m.rejected_claims') }} as acceptance_rate,
    coalesce(m.reopened_claims, 0) as reopened_claims,
    {{ safe_ratio('m.reopened_claims', 'm.claims_reported') }} as reopen_rate,
    coalesce(m.claims_open, 0) as claims_open,
    coalesce(m.claims_open, 0) <= {{ var('claim_month_mature_open_share') }} * coalesce(m.claims_not_cancelled, 0)
        as is_mature
from spine as s
left join monthly as m on m.branch_code = s.branch_code and m.month = s.month
left join rolling as r on r.branch_code = s.branch_code and r.month = s.month
