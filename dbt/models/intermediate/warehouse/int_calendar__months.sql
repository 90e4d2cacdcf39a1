-- One row per month from the first month of service activity to the last month of the data
-- (first day of month as DATE),
-- with its last day: the spine for "as of month end" measures (backlog, policies in force).
with months as (
    {{ dbt.date_spine(
        'month',
        "(select cast(" ~ dbt.date_trunc('month', 'first_activity_date') ~ " as date) from " ~ ref('int_warehouse__as_of') ~ ")",
        "(select cast(" ~ dbt.dateadd('month', 1, dbt.date_trunc('month', 'as_of_date')) ~ " as date) from " ~ ref('int_warehouse__as_of') ~ ")"
    ) }}
)

select
    cast(date_month as date) as month,
    {{ month_end('cast(date_month as date)') }} as month_end_date
from months
