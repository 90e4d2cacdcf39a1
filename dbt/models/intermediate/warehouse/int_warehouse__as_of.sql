-- The reporting date of the data set: the last day any source has data for (max event or issue
-- date across sources), and the start of the analysis window: as_of_date - N years + 1 day, or the
-- first data day when the data is shorter (docs/definitions.md#segment-window).
-- claims_data_start_date is the first day the claim-event data covers: before it the warehouse
-- cannot know whether a policy had claims, so loss ratios and claim-free years start there.
-- first_activity_date (the first day of service activity: claims, calls, surveys, complaints,
-- audits) starts the monthly calendar of the marts; policies issued earlier (the in-force book at
-- the start of the data) extend first_data_date but would only add empty months to the marts.
with source_days as (
    select 'claims' as source, true as is_activity, min(event_date) as first_day, max(event_date) as last_day from {{ ref('int_claim_events__current') }}
    union all
    select 'other', false, min(issue_date), max(issue_date) from {{ ref('int_policies__current') }}
    union all
    select 'other', true, min(offered_date), max(offered_date) from {{ ref('int_calls__current') }}
    union all
    select 'other', true, min(cast(responded_ts as date)), max(cast(responded_ts as date)) from {{ ref('int_surveys__current') }}
    union all
    select 'other', true, min(received_date), max(cast(updated_ts as date)) from {{ ref('stg_complaints__complaints') }}
    union all
    select 'other', true, min(audit_date), max(audit_date) from {{ ref('stg_audits__audits') }}
),

bounds as (
    select
        min(first_day) as first_data_date,
        min(case when is_activity then first_day end) as first_activity_date,
        max(last_day) as as_of_date,
        min(case when source = 'claims' then first_day end) as claims_data_start_date
    from source_days
)

select
    as_of_date,
    greatest(
        cast({{ dbt.dateadd('day', 1, dbt.dateadd('year', -var('window_years'), 'as_of_date')) }} as date),
        first_data_date
    ) as window_start_date,
    first_data_date,
    coalesce(first_activity_date, first_data_date) as first_activity_date,
    coalesce(claims_data_start_date, first_data_date) as claims_data_start_date
from bounds
