-- One row per complaint: validity, handling time and the legal deadline.
-- Deadline (CBIRC Order 2020 No. 3): a decision within 15 days of receipt, 30 with extension
-- level 1, 60 with level 2 (dbt var complaint_deadline_days). Days are calendar days: the ticket
-- is on time when it closes on or before received_date + deadline days. The deadline uses the
-- ticket's latest extension level (extensions are granted before the original deadline passes).
-- Valid (有效投诉): accepted, not a duplicate, not withdrawn, insurer at least partly at fault.
{%- set deadlines = var('complaint_deadline_days') %}
with complaints as (
    select * from {{ ref('stg_complaints__complaints') }}
),

policies as (
    select policy_no, customer_key, line_of_business from {{ ref('int_policies__current') }}
),

with_deadline as (
    select
        c.*,
        case c.extension_level
            {%- for level, days in deadlines.items() %}
            when {{ level }} then {{ days }}
            {%- endfor %}
        end as deadline_days
    from complaints as c
)

select
    c.complaint_no,
    c.branch_code,
    c.policy_no,
    p.customer_key,
    p.line_of_business,
    c.claim_no,
    c.channel,
    c.is_regulator_routed,
    c.category,
    c.received_ts,
    c.received_date,
    {{ month_start('c.received_ts') }} as received_month,
    c.is_accepted,
    c.is_duplicate,
    c.is_withdrawn,
    c.liability,
    c.is_accepted and not c.is_duplicate and not c.is_withdrawn
        and c.liability in ('AT_FAULT', 'PARTIAL') as is_valid,
    c.extension_level,
    c.status,
    c.closed_ts is not null as is_closed,
    c.closed_ts,
    cast(c.closed_ts as date) as closed_date,
    {{ month_start('c.closed_ts') }} as closed_month,
    {{ duration_days('c.received_ts', 'c.closed_ts') }} as handling_days,
    c.deadline_days,
    cast({{ dbt.dateadd('day', 'c.deadline_days', 'c.received_date') }} as date) as deadline_date,
    case when c.closed_ts is not null then
        cast(c.closed_ts as date) <= cast({{ dbt.dateadd('day', 'c.deadline_days', 'c.received_date') }} as date)
    end as is_within_deadline
from with_deadline as c
left join policies as p on p.policy_no = c.policy_no
