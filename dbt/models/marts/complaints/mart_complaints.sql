-- Complaints per branch x month (docs/definitions.md#mart_complaints).
-- Volumes (received, accepted, valid, regulator-routed, category mix) by the month received;
-- handling days and the within-deadline share over complaints closed in the month; backlog and
-- overdue as of the month's last day. Density: received complaints per 10k policies in force on
-- the month's last day (start_date <= day <= end_date, not cancelled) and per ¥100M premium
-- written (by issue_date) in the month. The valid rate of a month still moves while its tickets
-- wait for a liability decision: is_valid_rate_mature says when it has settled.
with complaints as (
    select * from {{ ref('int_complaints__lifecycle') }}
),

spine as (
    select b.code as branch_code, m.month, m.month_end_date
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
),

policies as (
    select * from {{ ref('int_policies__current') }}
),

received as (
    select
        branch_code,
        received_month as month,
        count(*) as received,
        count(case when is_accepted then 1 end) as accepted,
        count(case when is_valid then 1 end) as valid,
        count(case when is_validity_pending then 1 end) as validity_pending,
        count(case when is_regulator_routed then 1 end) as regulator_routed,
        {%- for category in ['CLAIM_DISPUTE', 'CLAIM_DELAY', 'ASSESSMENT_DISPUTE', 'SALES', 'SERVICE_ATTITUDE', 'OTHER'] %}
        count(case when category = '{{ category }}' then 1 end) as category_{{ category | lower }},
        {%- endfor %}
        count(case when category in ('CLAIM_DISPUTE', 'CLAIM_DELAY', 'ASSESSMENT_DISPUTE') then 1 end) as claims_related
    from complaints
    group by branch_code, received_month
),

closed as (
    select
        branch_code,
        closed_month as month,
        count(*) as closed,
        {{ percentile_cont('handling_days', 0.5) }} as handling_days_p50,
        {{ percentile_cont('handling_days', 0.9) }} as handling_days_p90,
        count(case when is_within_deadline then 1 end) as closed_within_deadline
    from complaints
    where is_closed
    group by branch_code, closed_month
),

open_at_month_end as (
    select
        s.branch_code,
        s.month,
        count(c.complaint_no) as open_backlog,
        count(case when c.deadline_date < s.month_end_date then 1 end) as overdue
    from spine as s
    inner join complaints as c
        on c.branch_code = s.branch_code
        and c.received_date <= s.month_end_date
        and (c.closed_date is null or c.closed_date > s.month_end_date)
    group by s.branch_code, s.month
),

in_force as (
    select s.branch_code, s.month, count(p.policy_no) as policies_in_force
    from spine as s
    inner join policies as p
        on p.branch_code = s.branch_code
        and p.start_date <= s.month_end_date
        and p.end_date >= s.month_end_date
        and not p.is_cancelled
    group by s.branch_code, s.month
),

written as (
    select branch_code, {{ month_start('issue_date') }} as month, sum(premium) as written_premium
    from policies
    group by branch_code, {{ month_start('issue_date') }}
)

select
    s.branch_code,
    s.month,
    coalesce(r.received, 0) as received,
    coalesce(r.accepted, 0) as accepted,
    coalesce(r.valid, 0) as valid,
    {{ safe_ratio('r.valid', 'r.received') }} as valid_rate,
    coalesce(r.validity_pending, 0) as validity_pending,
    coalesce(r.validity_pending, 0) <= {{ var('complaint_month_mature_pending_share') }} * coalesce(r.received, 0)
        as is_valid_rate_mature,
    coalesce(f.policies_in_force, 0) as policies_in_force,
    cast(coalesce(w.written_premium, 0) as decimal(18, 2)) as written_premium,
    {{ safe_ratio('coalesce(r.received, 0) * 10000.0', 'f.policies_in_force') }} as per_10k_policies,
    {{ safe_ratio('coalesce(r.received, 0) * 100000000.0', 'w.written_premium') }} as per_100m_premium,
    coalesce(cl.closed, 0) as closed,
    cl.handling_days_p50,
    cl.handling_days_p90,
    coalesce(cl.closed_within_deadline, 0) as closed_within_deadline,
    {{ safe_ratio('cl.closed_within_deadline', 'cl.closed') }} as within_deadline_share,
    coalesce(o.open_backlog, 0) as open_backlog,
    coalesce(o.overdue, 0) as overdue,
    coalesce(r.regulator_routed, 0) as regulator_routed,
    {%- for category in ['CLAIM_DISPUTE', 'CLAIM_DELAY', 'ASSESSMENT_DISPUTE', 'SALES', 'SERVICE_ATTITUDE', 'OTHER'] %}
    coalesce(r.category_{{ category | lower }}, 0) as category_{{ category | lower }},
    {%- endfor %}
    {{ safe_ratio('r.claims_related', 'r.received') }} as claims_related_share
from spine as s
left join received as r on r.branch_code = s.branch_code and r.month = s.month
left join closed as cl on cl.branch_code = s.branch_code and cl.month = s.month
left join open_at_month_end as o on o.branch_code = s.branch_code and o.month = s.month
left join in_force as f on f.branch_code = s.branch_code and f.month = s.month
left join written as w on w.branch_code = s.branch_code and w.month = s.month
