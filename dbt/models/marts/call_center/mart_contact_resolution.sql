-- First-contact resolution (首次解决率) and repeat contacts (docs/definitions.md#mart_contact_resolution),
-- per month x branch x queue x call type of the inbound calls (呼入), month by offered_ts. Every
-- queue x month or branch x month figure is a sum over these rows (a rate: the ratio of the sums).
-- A contact is an answered inbound call. It is a repeat when an earlier contact of the same call
-- type on the same policy, or from the same caller (phone_key: the salted hash of the number, never
-- the number), was offered at most repeat_contact_window_hours before it; FCR = 1 - repeat contacts
-- / contacts. A caller's satisfaction is the first survey response on the call's policy or claim
-- within contact_survey_window_hours after the call (satisfied: score >= satisfied_min_score).
{%- set window = var('repeat_contact_window_hours') %}
{%- set survey_window = var('contact_survey_window_hours') %}
with calls as (
    select call_id, call_type, queue, branch_code, policy_no, claim_no, phone_key, offered_ts, is_answered
    from {{ ref('int_calls__current') }}
    where direction = 'INBOUND'
),

contacts as (
    select * from calls where is_answered
),

-- the latest earlier contact of the same call type on the same policy, and from the same caller
previous as (
    select
        call_id,
        case when policy_no is not null then max(offered_ts) over (
            partition by call_type, policy_no order by offered_ts, call_id
            rows between unbounded preceding and 1 preceding) end as previous_on_policy_ts,
        case when phone_key is not null then max(offered_ts) over (
            partition by call_type, phone_key order by offered_ts, call_id
            rows between unbounded preceding and 1 preceding) end as previous_from_caller_ts
    from contacts
),

flagged as (
    select
        c.*,
        coalesce({{ duration_hours('p.previous_on_policy_ts', 'c.offered_ts') }} <= {{ window }}, false) as repeat_on_policy,
        coalesce({{ duration_hours('p.previous_from_caller_ts', 'c.offered_ts') }} <= {{ window }}, false) as repeat_from_caller
    from contacts as c
    inner join previous as p on p.call_id = c.call_id
),

responses as (
    select response_id, responded_ts, policy_no, claim_no, is_satisfied
    from {{ ref('int_surveys__attributed') }}
),

response_matches as (
    select f.call_id, r.response_id, r.responded_ts, r.is_satisfied
    from flagged as f
    inner join responses as r
        on r.policy_no = f.policy_no
        and r.responded_ts > f.offered_ts
        and r.responded_ts <= {{ add_hours('f.offered_ts', survey_window) }}
    union all
    select f.call_id, r.response_id, r.responded_ts, r.is_satisfied
    from flagged as f
    inner join responses as r
        on r.claim_no = f.claim_no
        and r.responded_ts > f.offered_ts
        and r.responded_ts <= {{ add_hours('f.offered_ts', survey_window) }}
),

next_response as (
    select call_id, {{ first_by('is_satisfied', ordering_key(['responded_ts', 'response_id'])) }} as next_satisfied
    from response_matches
    group by call_id
),

cells as (
    select
        {{ month_start('f.offered_ts') }} as month,
        f.branch_code,
        f.queue,
        f.call_type,
        count(*) as contacts,
        count(case when f.repeat_on_policy or f.repeat_from_caller then 1 end) as repeat_contacts,
        count(case when f.repeat_from_caller and not f.repeat_on_policy then 1 end) as repeat_contacts_caller_only,
        count(case when (f.repeat_on_policy or f.repeat_from_caller) and n.next_satisfied is not null then 1 end)
            as repeat_caller_responses,
        count(case when (f.repeat_on_policy or f.repeat_from_caller) and n.next_satisfied then 1 end)
            as repeat_caller_satisfied,
        count(case when not (f.repeat_on_policy or f.repeat_from_caller) and n.next_satisfied is not null then 1 end)
            as first_time_caller_responses,
        count(case when not (f.repeat_on_policy or f.repeat_from_caller) and n.next_satisfied then 1 end)
            as first_time_caller_satisfied
    from flagged as f
    left join next_response as n on n.call_id = f.call_id
    group by {{ month_start('f.offered_ts') }}, f.branch_code, f.queue, f.call_type
),

offered as (
    select {{ month_start('offered_ts') }} as month, branch_code, queue, call_type, count(*) as inbound_calls
    from calls
    group by {{ month_start('offered_ts') }}, branch_code, queue, call_type
),

spine as (
    select b.code as branch_code, m.month, q.queue, q.call_type
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
    cross join (select distinct queue, call_type from calls where queue is not null and call_type is not null) as q
)

select
    s.branch_code,
    s.month,
    s.queue,
    s.call_type,
    coalesce(o.inbound_calls, 0) as inbound_calls,
    coalesce(c.contacts, 0) as contacts,
    coalesce(c.repeat_contacts, 0) as repeat_contacts,
    coalesce(c.repeat_contacts_caller_only, 0) as repeat_contacts_caller_only,
    coalesce(c.contacts, 0) - coalesce(c.repeat_contacts, 0) as first_contacts,
    {{ safe_ratio('c.repeat_contacts', 'c.contacts') }} as repeat_rate,
    {{ safe_ratio('c.contacts - c.repeat_contacts', 'c.contacts') }} as first_contact_resolution,
    coalesce(c.repeat_caller_responses, 0) as repeat_caller_responses,
    coalesce(c.repeat_caller_satisfied, 0) as repeat_caller_satisfied,
    {{ safe_ratio('c.repeat_caller_satisfied', 'c.repeat_caller_responses') }} as repeat_caller_csat,
    coalesce(c.first_time_caller_responses, 0) as first_time_caller_responses,
    coalesce(c.first_time_caller_satisfied, 0) as first_time_caller_satisfied,
    {{ safe_ratio('c.first_time_caller_satisfied', 'c.first_time_caller_responses') }} as first_time_caller_csat
from spine as s
left join cells as c
    on c.branch_code = s.branch_code and c.month = s.month and c.queue = s.queue and c.call_type = s.call_type
left join offered as o
    on o.branch_code = s.branch_code and o.month = s.month and o.queue = s.queue and o.call_type = s.call_type
