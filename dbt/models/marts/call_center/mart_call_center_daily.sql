-- Call centre per day x queue (by offered_ts). Definitions: macros/call_center.sql,
-- docs/definitions.md#mart_call_center_daily.
-- closed_claims is the number of claims (company-wide) first closed that day, the basis of
-- follow-ups per closed claim (target: a follow-up call on every closed claim). It belongs to the
-- OUTBOUND queue, which makes the follow-up calls, and is null on the other queues' rows, so that a
-- sum over rows counts each closed claim once. A day with closed claims and no outbound call still
-- has its OUTBOUND row.
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
    select cast(closed_ts as date) as day, 'OUTBOUND' as queue, count(*) as closed_claims
    from {{ ref('int_claims__milestones') }}
    where closed_ts is not null
    group by cast(closed_ts as date)
),

rows_ as (
    select day, queue from daily
    union
    select day, queue from closed_claims
)

select
    r.day,
    r.queue,
    {{ call_center_rates('d', "case when r.queue = 'OUTBOUND' then coalesce(cc.closed_claims, 0) end") }}
from rows_ as r
left join daily as d on d.day = r.day and d.queue = r.queue
left join closed_claims as cc on cc.day = r.day and cc.queue = r.queue
