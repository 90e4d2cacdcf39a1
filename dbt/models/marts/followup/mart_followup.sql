-- Follow-up cases per branch x month (docs/definitions.md#mart_followup), from fct_followup_case.
-- Flows count the cases opened in the month (by opened_ts): opened = closed within the deadline +
-- overdue (missed it: closed late, or open past it) + not yet due (open, deadline still ahead on
-- the as-of date). Times to follow-up are over the month's cases that have closed. The backlog
-- (open at month end) and its overdue part are judged at the end of the month's last day.
-- Recovery compares the month's detractor cases called back in time with those that missed the
-- deadline: the next survey score (satisfied share) and the renewal of the case's policy, each
-- with its 95% Wilson interval.
with cases as (
    select * from {{ ref('fct_followup_case') }}
),

spine as (
    select
        b.code as branch_code,
        m.month,
        cast({{ dbt.dateadd('day', 1, 'm.month_end_date') }} as timestamp) as month_end_ts
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
),

opened as (
    select
        branch_code,
        month,
        count(*) as cases_opened,
        count(case when reason = 'DETRACTOR' then 1 end) as detractor_cases,
        count(case when reason = 'COMPLAINT' then 1 end) as complaint_cases,
        count(case when is_closed_within_deadline then 1 end) as closed_within_deadline,
        count(case when is_overdue then 1 end) as overdue,
        count(case when not is_closed_within_deadline and not is_overdue then 1 end) as not_yet_due,
        count(case when escalation_level >= 1 then 1 end) as escalated_level_1,
        count(case when escalation_level >= 2 then 1 end) as escalated_level_2,
        count(case when is_closed then 1 end) as cases_closed,
        {{ percentile_cont('hours_to_followup', 0.5) }} as hours_to_followup_p50,
        {{ percentile_cont('hours_to_followup', 0.9) }} as hours_to_followup_p90,
        -- recovery: detractors called back in time against those left past the deadline
        count(case when reason = 'DETRACTOR' and is_followed_up_in_time then 1 end) as followed_up_detractors,
        count(case when reason = 'DETRACTOR' and is_followed_up_in_time and next_score is not null then 1 end)
            as followed_up_next_responses,
        count(case when reason = 'DETRACTOR' and is_followed_up_in_time and next_satisfied then 1 end)
            as followed_up_next_satisfied,
        count(case when reason = 'DETRACTOR' and is_followed_up_in_time and renewal_due then 1 end)
            as followed_up_renewal_due,
        count(case when reason = 'DETRACTOR' and is_followed_up_in_time and renewal_due and renewed then 1 end)
            as followed_up_renewed,
        count(case when reason = 'DETRACTOR' and is_overdue then 1 end) as not_followed_up_detractors,
        count(case when reason = 'DETRACTOR' and is_overdue and next_score is not null then 1 end)
            as not_followed_up_next_responses,
        count(case when reason = 'DETRACTOR' and is_overdue and next_satisfied then 1 end)
            as not_followed_up_next_satisfied,
        count(case when reason = 'DETRACTOR' and is_overdue and renewal_due then 1 end)
            as not_followed_up_renewal_due,
        count(case when reason = 'DETRACTOR' and is_overdue and renewal_due and renewed then 1 end)
            as not_followed_up_renewed
    from cases
    group by branch_code, month
),

backlog as (
    select
        s.branch_code,
        s.month,
        count(*) as open_at_month_end,
        count(case when c.due_ts < s.month_end_ts then 1 end) as overdue_at_month_end
    from spine as s
    inner join cases as c
        on c.branch_code = s.branch_code
        and c.opened_ts < s.month_end_ts
        and (c.closed_ts is null or c.closed_ts >= s.month_end_ts)
    group by s.branch_code, s.month
)

{%- set z = var('wilson_z') %}
select
    s.branch_code,
    s.month,
    coalesce(o.cases_opened, 0) as cases_opened,
    coalesce(o.detractor_cases, 0) as detractor_cases,
    coalesce(o.complaint_cases, 0) as complaint_cases,
    coalesce(o.closed_within_deadline, 0) as closed_within_deadline,
    coalesce(o.overdue, 0) as overdue,
    coalesce(o.not_yet_due, 0) as not_yet_due,
    coalesce(o.closed_within_deadline, 0) + coalesce(o.overdue, 0) as cases_decided,
    {{ safe_ratio('o.overdue', 'o.closed_within_deadline + o.overdue') }} as overdue_share,
    coalesce(o.escalated_level_1, 0) as escalated_level_1,
    coalesce(o.escalated_level_2, 0) as escalated_level_2,
    coalesce(o.cases_closed, 0) as cases_closed,
    cast(o.hours_to_followup_p50 as double) as hours_to_followup_p50,
    cast(o.hours_to_followup_p90 as double) as hours_to_followup_p90,
    coalesce(b.open_at_month_end, 0) as open_at_month_end,
    coalesce(b.overdue_at_month_end, 0) as overdue_at_month_end,
    {#- the recovery of followed-up against not-followed-up detractors: the same columns for each group -#}
    {%- for group in ['followed_up', 'not_followed_up'] %}
    coalesce(o.{{ group }}_detractors, 0) as {{ group }}_detractors,
    coalesce(o.{{ group }}_next_responses, 0) as {{ group }}_next_responses,
    coalesce(o.{{ group }}_next_satisfied, 0) as {{ group }}_next_satisfied,
    {{ proportion_with_interval('o.' ~ group ~ '_next_satisfied', 'o.' ~ group ~ '_next_responses', group ~ '_next_csat', z) }},
    coalesce(o.{{ group }}_renewal_due, 0) as {{ group }}_renewal_due,
    coalesce(o.{{ group }}_renewed, 0) as {{ group }}_renewed,
    {{ proportion_with_interval('o.' ~ group ~ '_renewed', 'o.' ~ group ~ '_renewal_due', group ~ '_renewal_rate', z) }}
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
from spine as s
left join opened as o on o.branch_code = s.branch_code and o.month = s.month
left join backlog as b on b.branch_code = s.branch_code and b.month = s.month
