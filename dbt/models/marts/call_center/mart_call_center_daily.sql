-- Call centre per day x queue (by offered_ts). Definitions: macros/call_center.sql.
-- closed_claims is the number of claims (company-wide) first closed that day, the basis of
-- follow-ups per closed claim (target: a follow-up call on every closed claim).
with calls as (
    select * from {{ ref('int_calls__current') }}
),

daily as (
    select
        calls.offered_date as day,
        calls.queue,
        {{ call_center_measures('calls') }}
    from calls
    group by calls.offered_date, calls.queue
),

closed_claims as (
    select cast(closed_ts as date) as day, count(*) as closed_claims
    from {{ ref('int_claims__milestones') }}
    where closed_ts is not null
    group by cast(closed_ts as date)
)

select
    d.day,
    d.queue,
    {{ call_center_rates('d', 'cc.closed_claims') }}
from daily as d
left join closed_claims as cc on cc.day = d.day
