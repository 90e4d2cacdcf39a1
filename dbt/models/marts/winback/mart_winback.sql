-- Win-back per branch x month of complaint closure, rolled up from fct_complaint_winback
-- (docs/definitions.md#mart_winback). winback_rate = renewed / due_for_renewal (the complained
-- policy, or the complainant's first policy due, was renewed); retention_rate = retained /
-- due_for_renewal (the complainant still held a policy the day after the due date). Only due dates
-- before the as-of date count; cohort_complete says that every due date of the month's window has
-- passed (month end + window months before the as-of date), so the month's rates will not move. baseline_renewal_rate is the mean of the
-- non-complainant renewal rates of the due complaints' branch and line (so the baseline has the
-- same line mix as the complainants); renewal_lift = winback_rate / baseline_renewal_rate
-- (1.0 = complainants renew like comparable non-complainants).
with facts as (
    select * from {{ ref('fct_complaint_winback') }}
),

as_of as (
    select as_of_date from {{ ref('int_warehouse__as_of') }}
),

spine as (
    select b.code as branch_code, m.month
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
),

monthly as (
    select
        branch_code,
        month,
        count(*) as complaints_closed,
        count(post_handling_score) as post_handling_responses,
        cast(avg(post_handling_score) as double) as post_handling_score,
        count(case when satisfied_after then 1 end) as satisfied_after,
        count(case when due_for_renewal then 1 end) as due_for_renewal,
        count(case when renewed then 1 end) as renewed,
        count(case when retained_as_customer then 1 end) as retained,
        count(case when not_yet_due then 1 end) as not_yet_due,
        avg(case when due_for_renewal then baseline_renewal_rate end) as baseline_renewal_rate
    from facts
    group by branch_code, month
)

select
    s.branch_code,
    s.month,
    coalesce(m.complaints_closed, 0) as complaints_closed,
    coalesce(m.post_handling_responses, 0) as post_handling_responses,
    m.post_handling_score,
    coalesce(m.satisfied_after, 0) as satisfied_after,
    {{ safe_ratio('m.satisfied_after', 'm.post_handling_responses') }} as satisfied_after_share,
    coalesce(m.due_for_renewal, 0) as due_for_renewal,
    coalesce(m.renewed, 0) as renewed,
    {{ safe_ratio('m.renewed', 'm.due_for_renewal') }} as winback_rate,
    coalesce(m.retained, 0) as retained,
    {{ safe_ratio('m.retained', 'm.due_for_renewal') }} as retention_rate,
    coalesce(m.not_yet_due, 0) as not_yet_due,
    {{ month_end(dbt.dateadd('month', var('winback_window_months'), 's.month')) }} < a.as_of_date as cohort_complete,
    m.baseline_renewal_rate,
    {{ safe_ratio(safe_ratio('m.renewed', 'm.due_for_renewal'), 'm.baseline_renewal_rate') }} as renewal_lift
from spine as s
cross join as_of as a
left join monthly as m on m.branch_code = s.branch_code and m.month = s.month
