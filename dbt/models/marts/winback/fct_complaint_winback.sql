-- Win-back (挽回效果) per handled complaint: accepted, not a duplicate, not withdrawn, closed
-- (docs/definitions.md#fct_complaint_winback).
-- Post-handling satisfaction: the first COMPLAINT-stage survey response for the complaint.
-- Renewal due: the complainant's first policy (the complaint's own policy first) whose end date
-- (the due date) lies on or after the closing date, within winback_window_months of it, and
-- before the as-of date, so that the day after it is in the data (a due date not yet passed says
-- nothing yet: not_yet_due). Renewed when a policy names it in renewal_of. Retained as a customer
-- when any policy of the complainant is in force on the day after the due date (a renewal, or
-- another policy the customer holds).
-- Baseline: the renewal rate of due policies of customers who never complained, in the due
-- policy's branch and line of business.
with complaints as (
    select * from {{ ref('int_complaints__lifecycle') }}
    where is_accepted and not is_duplicate and not is_withdrawn and is_closed
),

renewals as (
    select * from {{ ref('int_policies__renewals') }}
),

as_of as (
    select as_of_date from {{ ref('int_warehouse__as_of') }}
),

policies as (
    select policy_no, customer_key, start_date, end_date, is_cancelled, cancelled_date
    from {{ ref('int_policies__current') }}
),

post_survey as (
    select
        complaint_no,
        {{ first_by('score', 'responded_ts') }} as post_handling_score,
        {{ first_by('is_satisfied', 'responded_ts') }} as satisfied_after
    from {{ ref('int_surveys__current') }}
    where stage = 'COMPLAINT' and complaint_no is not null
    group by complaint_no
),

due_candidates as (
    select
        c.complaint_no,
        r.policy_no as due_policy_no,
        r.branch_code as due_branch_code,
        r.line_of_business as due_line_of_business,
        r.end_date as due_end_date,
        r.renewed,
        row_number() over (
            partition by c.complaint_no
            order by case when r.policy_no = c.policy_no then 0 else 1 end, r.end_date, r.policy_no
        ) as candidate_rank
    from complaints as c
    cross join as_of
    inner join renewals as r
        on r.customer_key = c.customer_key
        and r.is_due_for_renewal
        and r.end_date < as_of.as_of_date
        and r.end_date >= c.closed_date
        and r.end_date <= cast({{ dbt.dateadd('month', var('winback_window_months'), 'c.closed_date') }} as date)
),

-- complaints whose complainant has a policy falling due inside the window but after the as-of date
later_due as (
    select distinct c.complaint_no
    from complaints as c
    cross join as_of
    inner join renewals as r
        on r.customer_key = c.customer_key
        and r.status = 'ACTIVE'
        and r.end_date >= as_of.as_of_date
        and r.end_date >= c.closed_date
        and r.end_date <= cast({{ dbt.dateadd('month', var('winback_window_months'), 'c.closed_date') }} as date)
),

retained as (
    select distinct d.complaint_no
    from due_candidates as d
    inner join complaints as c on c.complaint_no = d.complaint_no
    inner join policies as p
        on p.customer_key = c.customer_key
        and p.start_date <= cast({{ dbt.dateadd('day', 1, 'd.due_end_date') }} as date)
        and p.end_date >= cast({{ dbt.dateadd('day', 1, 'd.due_end_date') }} as date)
        and not (coalesce(p.is_cancelled, false)
                 and coalesce(p.cancelled_date, p.start_date) <= cast({{ dbt.dateadd('day', 1, 'd.due_end_date') }} as date))
    where d.candidate_rank = 1
),

complainant_keys as (
    select distinct customer_key from {{ ref('int_complaints__lifecycle') }} where customer_key is not null
),

baseline as (
    select
        r.branch_code,
        r.line_of_business,
        count(*) as baseline_due,
        count(case when r.renewed then 1 end) as baseline_renewed
    from renewals as r
    left join complainant_keys as k on k.customer_key = r.customer_key
    where r.is_due_for_renewal and k.customer_key is null
    group by r.branch_code, r.line_of_business
)

select
    c.complaint_no,
    c.branch_code,
    c.closed_month as month,
    c.policy_no,
    c.customer_key,
    c.category,
    c.received_ts,
    c.closed_ts,
    c.handling_days,
    c.is_within_deadline,
    c.handling_days <= 7 as handled_within_7d,
    c.handling_days > 15 as handled_after_15d,
    s.post_handling_score,
    s.satisfied_after,
    d.due_policy_no,
    d.due_end_date,
    d.due_policy_no is not null as due_for_renewal,
    coalesce(d.renewed, false) and d.due_policy_no is not null as renewed,
    rt.complaint_no is not null as retained_as_customer,
    d.due_policy_no is null and ld.complaint_no is not null as not_yet_due,
    {{ safe_ratio('b.baseline_renewed', 'b.baseline_due') }} as baseline_renewal_rate
from complaints as c
left join post_survey as s on s.complaint_no = c.complaint_no
left join due_candidates as d on d.complaint_no = c.complaint_no and d.candidate_rank = 1
left join retained as rt on rt.complaint_no = c.complaint_no
left join later_due as ld on ld.complaint_no = c.complaint_no
left join baseline as b
    on b.branch_code = d.due_branch_code and b.line_of_business = d.due_line_of_business
