-- One row per complaint: validity, handling time and the legal deadline
-- (docs/definitions.md#legal-clocks).
-- Deadline (CBIRC Order 2020 No. 3, art. 19): a decision within 15 days of receipt, 30 with
-- extension level 1, 60 with level 2 (dbt var complaint_deadline_days). Days are calendar days
-- counted from the day after receipt; a period whose last day is a weekend or public holiday ends
-- on the next working day (Civil Code arts. 201, 203; macro legal_period_end). The ticket is on
-- time when it closes on or before that date. The deadline uses the ticket's latest extension
-- level (extensions are granted before the original deadline passes).
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
    {%- set may_be_valid = "c.is_accepted and not c.is_duplicate and not c.is_withdrawn" %}
    {{ may_be_valid }} and c.liability in ('AT_FAULT', 'PARTIAL') as is_valid,
    -- may still turn valid: the liability finding is not in yet
    {{ may_be_valid }} and c.liability = 'PENDING' as is_validity_pending,
    c.extension_level,
    c.status,
    c.closed_ts is not null as is_closed,
    c.closed_ts,
    cast(c.closed_ts as date) as closed_date,
    {{ month_start('c.closed_ts') }} as closed_month,
    {{ duration_days('c.received_ts', 'c.closed_ts') }} as handling_days,
    c.deadline_days,
    c.deadline_date,
    case when c.closed_ts is not null then cast(c.closed_ts as date) <= c.deadline_date end as is_within_deadline
from (
    select with_deadline.*, {{ legal_period_end('with_deadline.received_date', 'with_deadline.deadline_days') }} as deadline_date
    from with_deadline
) as c
left join policies as p on p.policy_no = c.policy_no
