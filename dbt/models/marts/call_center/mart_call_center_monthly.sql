-- Call centre per branch x month (by offered_ts; a call belongs to its branch_code).
-- Definitions: macros/call_center.sql, docs/definitions.md#mart_call_center_monthly. closed_claims: claims of the branch first closed in the month.
with calls as (
    select *, {{ month_start('offered_ts') }} as month from {{ ref('int_calls__current') }}
),

spine as (
    select b.code as branch_code, m.month
    from {{ ref('branches') }} as b
    cross join {{ ref('int_calendar__months') }} as m
),

monthly as (
    select
        calls.branch_code,
        calls.month,
        {{ call_center_measures('calls') }}
    from calls
    group by calls.branch_code, calls.month
),

closed_claims as (
    select branch_code, {{ month_start('closed_ts') }} as month, count(*) as closed_claims
    from {{ ref('int_claims__milestones') }}
    where closed_ts is not null
    group by branch_code, {{ month_start('closed_ts') }}
)

select
    s.branch_code,
    s.month,
    {{ call_center_rates('m', 'coalesce(cc.closed_claims, 0)') }}
from spine as s
left join monthly as m on m.branch_code = s.branch_code and m.month = s.month
left join closed_claims as cc on cc.branch_code = s.branch_code and cc.month = s.month
