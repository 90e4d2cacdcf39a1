-- The working-hour clock (docs/definitions.md#followup-clocks): one row per day of the business
-- calendar seed (China's working days, make-up working days included), with the working days
-- before it and, on a working day, its number in the sequence of working days. A moment's
-- position on the clock is working_days_before x the working day's hours plus the hours of its
-- own working day that have passed (macro working_hours_position); a deadline N working hours
-- later falls on the working day numbered ceil(position / hours) (macro working_hours_deadline).
with calendar as (
    select calendar_date, is_working_day from {{ ref('business_calendar') }}
)

select
    calendar_date,
    is_working_day,
    cast(coalesce(sum(case when is_working_day then 1 else 0 end) over (
        order by calendar_date rows between unbounded preceding and 1 preceding), 0) as bigint) as working_days_before,
    case when is_working_day then cast(sum(case when is_working_day then 1 else 0 end) over (
        order by calendar_date rows between unbounded preceding and current row) as bigint) end as working_day_seq
from calendar
