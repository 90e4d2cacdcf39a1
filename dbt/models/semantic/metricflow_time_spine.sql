-- The day time spine MetricFlow joins metrics to (docs/bi.md#the-semantic-layer): one row per
-- calendar day of the business calendar seed, which covers every month the marts hold.
select cast(calendar_date as date) as date_day
from {{ ref('business_calendar') }}
