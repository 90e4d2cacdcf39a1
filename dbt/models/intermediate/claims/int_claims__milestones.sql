-- One row per claim: its milestone events pivoted into timestamps, amounts and cycle times.
-- A claim belongs to the branch of its policy (docs/definitions.md#common-rules); when the policy is unknown, the branch
-- code embedded in the claim number (CL<branch>...) is used so that no claim loses its branch.
-- Milestones take the first occurrence (the first report, the first arrival ...), except that a
-- claim counts as closed only when its last CLOSED event is not followed by a REOPENED event.
-- Built incrementally: a build recomputes the claims with an event version ingested since the last
-- build, and the claims whose policy changed since (branch and customer come from the policy).
{{ config(materialized=incremental_materialization(), unique_key='claim_no', incremental_strategy='delete+insert') }}

with
{%- if is_incremental() %}
touched_claims as (
    {{ changed_since_watermark(ref('int_claim_events__current'), 'claim_no') }}
    union
    select claim_no from {{ this }}
    where policy_no in ({{ changed_since_watermark(ref('int_policies__current'), 'policy_no') }})
),
{%- endif %}

events as (
    {{ touched_rows(ref('int_claim_events__current'), 'claim_no', 'touched_claims') }}
),

pivoted as (
    select
        claim_no,
        -- the policy on the first report (all events of a claim carry the same policy)
        {{ first_by("policy_no", "event_ts") }} as policy_no,
        min(case when event_type = 'REPORTED' then event_ts end) as reported_ts,
        min(case when event_type = 'SURVEYOR_DISPATCHED' then event_ts end) as dispatched_ts,
        min(case when event_type = 'SURVEYOR_ARRIVED' then event_ts end) as arrived_ts,
        min(case when event_type = 'DOCS_COMPLETE' then event_ts end) as docs_complete_ts,
        min(case when event_type = 'ASSESSED' then event_ts end) as assessed_ts,
        min(case when event_type = 'AGREED' then event_ts end) as agreed_ts,
        min(case when event_type = 'PAID' then event_ts end) as paid_ts,
        min(case when event_type = 'REJECTED' then event_ts end) as rejected_ts,
        min(case when event_type = 'CANCELLED' then event_ts end) as cancelled_ts,
        min(case when event_type = 'CLOSED' then event_ts end) as closed_ts,
        max(case when event_type = 'CLOSED' then event_ts end) as last_closed_ts,
        min(case when event_type = 'REOPENED' then event_ts end) as reopened_ts,
        max(case when event_type = 'REOPENED' then event_ts end) as last_reopened_ts,
        bool_or(is_injury) as is_injury,
        {{ first_by("location_type", "event_ts") }} as location_type,
        {{ first_by("report_channel", "event_ts") }} as report_channel,
        -- the estimate on the first report; the latest assessment; all payments summed
        {{ first_by('amount', 'event_ts') }} filter (where event_type = 'REPORTED') as estimate_amount,
        {{ last_by('amount', 'event_ts') }} filter (where event_type = 'ASSESSED') as assessed_amount,
        sum(case when event_type = 'PAID' then amount end) as paid_amount,
        max(_ingested_at) as events_ingested_at
    from events
    group by claim_no
),

policies as (
    select * from {{ ref('int_policies__current') }}
),

flagged as (
    select
        m.*,
        m.cancelled_ts is not null as is_cancelled,
        m.rejected_ts is not null as is_rejected,
        m.paid_ts is not null as is_paid,
        m.last_closed_ts is not null
            and (m.last_reopened_ts is null or m.last_closed_ts >= m.last_reopened_ts) as is_closed,
        m.reopened_ts is not null as is_reopened
    from pivoted as m
)

select
    f.claim_no,
    f.policy_no,
    p.customer_key,
    coalesce(p.branch_code, substr(f.claim_no, 3, 2)) as branch_code,
    p.line_of_business,
    p.business_source,
    f.reported_ts,
    cast(f.reported_ts as date) as report_date,
    {{ month_start('f.reported_ts') }} as report_month,
    f.dispatched_ts,
    f.arrived_ts,
    f.docs_complete_ts,
    f.assessed_ts,
    f.agreed_ts,
    f.paid_ts,
    f.rejected_ts,
    f.cancelled_ts,
    f.closed_ts,
    f.reopened_ts,
    f.is_injury,
    f.location_type,
    f.report_channel,
    f.estimate_amount,
    f.assessed_amount,
    coalesce(f.paid_amount, 0) as paid_amount,
    -- incurred: paid if paid, else the assessment, else the estimate; nothing for cancelled or
    -- rejected claims, nor for claims closed without payment (zero-closed: nothing was owed)
    cast(case
        when f.is_cancelled or (f.is_rejected and not f.is_paid) then 0
        when f.is_closed and not f.is_paid then 0
        when f.is_paid then f.paid_amount
        else coalesce(f.assessed_amount, f.estimate_amount, 0)
    end as decimal(14, 2)) as incurred_amount,
    f.is_cancelled,
    f.is_rejected,
    f.is_paid,
    f.is_closed,
    f.is_reopened,
    -- zero-closed (零结案): closed without any payment, and neither rejected nor cancelled
    f.is_closed and not f.is_paid and not f.is_rejected and not f.is_cancelled as is_zero_closed,
    -- the coverage decision (Insurance Law art. 23): settlement agreed or claim rejected
    least(f.agreed_ts, f.rejected_ts) as decided_ts,
    {{ duration_minutes('f.reported_ts', 'f.arrived_ts') }} as arrival_minutes,
    {{ duration_hours('f.reported_ts', 'f.assessed_ts') }} as report_to_assessment_hours,
    {{ duration_days('f.reported_ts', 'f.paid_ts') }} as report_to_payment_days,
    {{ duration_days('f.agreed_ts', 'f.paid_ts') }} as agreement_to_payment_days,
    {{ duration_days('f.reported_ts', 'least(f.agreed_ts, f.rejected_ts)') }} as report_to_decision_days,
    -- lineage: the newest ingest behind the row (its events or its policy), the incremental watermark
    greatest(f.events_ingested_at, p._ingested_at) as _source_ingested_at
from flagged as f
left join policies as p on p.policy_no = f.policy_no
