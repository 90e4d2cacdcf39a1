-- Follow-up cases (回访闭环), one row per case (docs/definitions.md#fct_followup_case).
-- A case opens for every survey response scoring at or below followup_detractor_max_score (a
-- detractor, at its responded_ts) and for every accepted complaint that is not a duplicate (at its
-- received_ts). It is due within the deadline of its rule (var followup_rules: hours, on the
-- working-hour clock or in calendar hours; docs/definitions.md#followup-clocks). It closes at the
-- first completed follow-up call (回访, outcome 接通: a refusal 拒访 reaches the customer but does not
-- close it) on the case's policy or claim at or after the opening, or, for a complaint, when the
-- complaint closes, whichever comes first. An open case escalates at its deadline (level 1, to the
-- branch's service manager) and followup_escalation_hours.level_2 later on the same clock (level 2,
-- to head office). Recovery: the customer's next survey response after the deadline (within
-- followup_recovery_window_months of the opening), and whether the case's policy, falling due in
-- that window before the as-of date, was renewed.
{%- set rules = var('followup_rules') %}
{%- set escalation = var('followup_escalation_hours') %}
{%- set window_months = var('followup_recovery_window_months') %}
{%- set milestones = [('due', 0), ('escalation_1', escalation['level_1']), ('escalation_2', escalation['level_2'])] %}

with as_of as (
    select
        as_of_date,
        -- "as of" is the end of the as-of date
        cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as timestamp) as as_of_ts
    from {{ ref('int_warehouse__as_of') }}
),

calendar as (
    select calendar_date, is_working_day, working_days_before, working_day_seq
    from {{ ref('int_calendar__working_hours') }}
),

policies as (
    select policy_no, customer_key from {{ ref('int_policies__current') }}
),

responses as (
    select
        r.response_id,
        r.stage,
        r.responded_ts,
        r.policy_no,
        r.claim_no,
        r.complaint_no,
        r.score,
        r.is_satisfied,
        r.branch_code,
        p.customer_key
    from {{ ref('int_surveys__attributed') }} as r
    left join policies as p on p.policy_no = r.policy_no
),

opened as (
    select
        {{ dbt.concat(["'DETRACTOR:'", 'response_id']) }} as case_key,
        'DETRACTOR' as reason,
        branch_code,
        response_id,
        complaint_no,
        stage,
        score,
        policy_no,
        claim_no,
        customer_key,
        responded_ts as opened_ts,
        cast(null as timestamp) as complaint_closed_ts
    from responses
    where score <= {{ var('followup_detractor_max_score') }}
    union all
    select
        {{ dbt.concat(["'COMPLAINT:'", 'complaint_no']) }} as case_key,
        'COMPLAINT' as reason,
        branch_code,
        cast(null as {{ dbt.type_string() }}) as response_id,
        complaint_no,
        cast(null as {{ dbt.type_string() }}) as stage,
        cast(null as integer) as score,
        policy_no,
        claim_no,
        customer_key,
        received_ts as opened_ts,
        closed_ts as complaint_closed_ts
    from {{ ref('int_complaints__lifecycle') }}
    where is_accepted and not is_duplicate
),

ruled as (
    select
        o.*,
        cast(case o.reason
            {%- for reason, rule in rules.items() %}
            when '{{ reason }}' then {{ rule['deadline_hours'] }}
            {%- endfor %}
        end as double) as deadline_hours,
        case o.reason
            {%- for reason, rule in rules.items() %}
            when '{{ reason }}' then '{{ rule['clock'] }}'
            {%- endfor %}
        end as deadline_clock,
        {{ working_hours_position('o.opened_ts', 'oc') }} as opened_position
    from opened as o
    left join calendar as oc on oc.calendar_date = cast(o.opened_ts as date)
),

-- the deadline and the escalation moments: on the working-hour clock, positions turned back into
-- moments through the working day they fall on; in calendar hours (and wherever the calendar
-- does not reach), hours added to the opening
timed as (
    select
        r.*,
        {%- for name, offset in milestones %}
        case when r.deadline_clock = 'working' and {{ name }}_cal.calendar_date is not null
            then {{ working_hours_moment('(r.opened_position + r.deadline_hours + ' ~ offset ~ ')', name ~ '_cal') }}
            else {{ add_hours('r.opened_ts', 'r.deadline_hours + ' ~ offset) }}
        end as {{ name }}_ts{{ ',' if not loop.last }}
        {%- endfor %}
    from ruled as r
    {%- for name, offset in milestones %}
    left join calendar as {{ name }}_cal
        on r.deadline_clock = 'working'
        and {{ name }}_cal.working_day_seq = {{ working_day_of_position('r.opened_position + r.deadline_hours + ' ~ offset) }}
    {%- endfor %}
),

followup_calls as (
    select call_id, policy_no, claim_no, coalesce(answered_ts, offered_ts) as reached_ts
    from {{ ref('int_calls__current') }}
    where call_type = 'FOLLOW_UP' and is_completed
),

call_matches as (
    select t.case_key, f.call_id, f.reached_ts
    from timed as t
    inner join followup_calls as f on f.claim_no = t.claim_no and f.reached_ts >= t.opened_ts
    union all
    select t.case_key, f.call_id, f.reached_ts
    from timed as t
    inner join followup_calls as f on f.policy_no = t.policy_no and f.reached_ts >= t.opened_ts
),

first_call as (
    select
        case_key,
        min(reached_ts) as followup_call_ts,
        {{ first_by('call_id', ordering_key(['reached_ts', 'call_id'])) }} as followup_call_id
    from call_matches
    group by case_key
),

closed as (
    select
        t.*,
        fc.followup_call_id,
        fc.followup_call_ts,
        case
            when fc.followup_call_ts is not null
                and (t.complaint_closed_ts is null or fc.followup_call_ts <= t.complaint_closed_ts)
                then 'FOLLOW_UP_CALL'
            when t.complaint_closed_ts is not null then 'COMPLAINT_CLOSED'
        end as closed_by
    from timed as t
    left join first_call as fc on fc.case_key = t.case_key
),

states as (
    select
        c.*,
        case c.closed_by
            when 'FOLLOW_UP_CALL' then c.followup_call_ts
            when 'COMPLAINT_CLOSED' then c.complaint_closed_ts
        end as closed_ts,
        a.as_of_ts
    from closed as c
    cross join as_of as a
),

next_response as (
    select
        s.case_key,
        {{ first_by('r.score', ordering_key(['r.responded_ts', 'r.response_id'])) }} as next_score,
        {{ first_by('r.is_satisfied', ordering_key(['r.responded_ts', 'r.response_id'])) }} as next_satisfied
    from states as s
    inner join responses as r
        on r.customer_key = s.customer_key
        and r.responded_ts > s.due_ts
        and r.responded_ts <= {{ dbt.dateadd('month', window_months, 's.opened_ts') }}
    group by s.case_key
),

renewal as (
    select s.case_key, r.renewed
    from states as s
    cross join as_of as a
    inner join {{ ref('int_policies__renewals') }} as r
        on r.policy_no = s.policy_no
        and r.is_due_for_renewal
        and r.end_date < a.as_of_date
        and r.end_date >= cast(s.opened_ts as date)
        and r.end_date <= cast({{ dbt.dateadd('month', window_months, 'cast(s.opened_ts as date)') }} as date)
)

select
    s.case_key,
    s.reason,
    s.branch_code,
    {{ month_start('s.opened_ts') }} as month,
    s.response_id,
    s.complaint_no,
    s.stage,
    s.score,
    s.policy_no,
    s.claim_no,
    s.customer_key,
    s.opened_ts,
    s.deadline_hours,
    s.deadline_clock,
    s.due_ts,
    s.followup_call_id,
    s.followup_call_ts,
    s.closed_ts,
    s.closed_by,
    s.closed_ts is not null as is_closed,
    coalesce(s.closed_ts <= s.due_ts, false) as is_closed_within_deadline,
    coalesce(s.closed_by = 'FOLLOW_UP_CALL' and s.closed_ts <= s.due_ts, false) as is_followed_up_in_time,
    (s.closed_ts is null or s.closed_ts > s.due_ts) and s.due_ts < s.as_of_ts as is_overdue,
    s.closed_ts is null and s.due_ts < s.as_of_ts as is_open_overdue,
    cast(case
        when s.escalation_2_ts < coalesce(s.closed_ts, s.as_of_ts) then 2
        when s.escalation_1_ts < coalesce(s.closed_ts, s.as_of_ts) then 1
        else 0
    end as integer) as escalation_level,
    case when s.escalation_1_ts < coalesce(s.closed_ts, s.as_of_ts) then s.escalation_1_ts end as escalated_level_1_ts,
    case when s.escalation_2_ts < coalesce(s.closed_ts, s.as_of_ts) then s.escalation_2_ts end as escalated_level_2_ts,
    {{ duration_hours('s.opened_ts', 's.closed_ts') }} as hours_to_followup,
    {{ duration_hours('s.opened_ts', 'coalesce(s.closed_ts, s.as_of_ts)') }} as hours_open,
    n.next_score,
    n.next_satisfied,
    rn.case_key is not null as renewal_due,
    coalesce(rn.renewed, false) as renewed
from states as s
left join next_response as n on n.case_key = s.case_key
left join renewal as rn on rn.case_key = s.case_key
