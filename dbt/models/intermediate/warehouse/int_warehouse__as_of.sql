-- The reporting date of the data set: the last day any source has data for (max event or issue
-- date across sources), and the start of the analysis window: as_of_date - N years + 1 day, or the
-- first data day when the data is shorter (DESIGN §6: segments over 3 years or all data).
with source_days as (
    select min(event_date) as first_day, max(event_date) as last_day from {{ ref('stg_claim_events__events') }}
    union all
    select min(issue_date), max(issue_date) from {{ ref('stg_policies__policies') }}
    union all
    select min(offered_date), max(offered_date) from {{ ref('stg_call_logs__calls') }}
    union all
    select min(cast(responded_ts as date)), max(cast(responded_ts as date)) from {{ ref('stg_surveys__responses') }}
    union all
    select min(received_date), max(cast(updated_ts as date)) from {{ ref('stg_complaints__complaints') }}
    union all
    select min(audit_date), max(audit_date) from {{ ref('stg_audits__audits') }}
),

bounds as (
    select min(first_day) as first_data_date, max(last_day) as as_of_date from source_days
)

select
    as_of_date,
    greatest(
        cast({{ dbt.dateadd('day', 1, dbt.dateadd('year', -var('window_years'), 'as_of_date')) }} as date),
        first_data_date
    ) as window_start_date,
    first_data_date
from bounds
