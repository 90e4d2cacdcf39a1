-- Underwriting watch list (核保观察名单): HIGH_RISK and SUB_HEALTHY customers with a policy whose
-- renewal decision is due, with the reason and the recommended action (docs/definitions.md#mart_underwriting_watchlist).
-- A renewal is due when an ACTIVE policy that has not been renewed ends within the next
-- watchlist_horizon_days after the as-of date, or ended at most watchlist_grace_days before it
-- (still renewable without a lapse; older unrenewed policies have lapsed and need no decision).

with as_of as (
    select as_of_date from {{ ref('int_warehouse__as_of') }}
),

due_policies as (
    select
        r.policy_no,
        r.customer_key,
        r.branch_code,
        r.line_of_business,
        r.business_source,
        r.end_date,
        p.premium,
        as_of.as_of_date,
        {{ dbt.datediff('as_of.as_of_date', 'r.end_date', 'day') }} as days_to_expiry
    from {{ ref('int_policies__renewals') }} as r
    inner join {{ ref('int_policies__current') }} as p on p.policy_no = r.policy_no
    cross join as_of
    where not p.is_cancelled
      and not coalesce(r.renewed, false)
      and r.end_date between
          cast({{ dbt.dateadd('day', -var('watchlist_grace_days'), 'as_of.as_of_date') }} as date)
          and cast({{ dbt.dateadd('day', var('watchlist_horizon_days'), 'as_of.as_of_date') }} as date)
),

watched as (
    select
        d.*,
        s.segment,
        s.value_tier,
        s.segment_reason,
        s.claim_count,
        s.claims_latest_year,
        s.earned_premium,
        s.incurred_loss,
        s.loss_ratio,
        s.has_large_injury_claim,
        {{ recommended_action_code('s.segment', 's.value_tier') }} as action_code
    from due_policies as d
    inner join {{ ref('dim_customer_segment') }} as s on s.customer_key = d.customer_key
    where s.segment in ('HIGH_RISK', 'SUB_HEALTHY')
)

select
    cast(policy_no as string) as policy_no,
    cast(customer_key as string) as customer_key,
    cast(branch_code as string) as branch_code,
    cast(line_of_business as string) as line_of_business,
    cast(business_source as string) as business_source,
    cast(premium as double) as premium,
    cast(end_date as date) as end_date,
    cast(as_of_date as date) as as_of_date,
    cast(days_to_expiry as integer) as days_to_expiry,
    cast(segment as string) as segment,
    cast({{ segment_label_zh('segment') }} as string) as segment_label_zh,
    cast(value_tier as string) as value_tier,
    cast(claim_count as bigint) as claim_count,
    cast(claims_latest_year as bigint) as claims_latest_year,
    cast(earned_premium as double) as earned_premium,
    cast(incurred_loss as double) as incurred_loss,
    cast(loss_ratio as double) as loss_ratio,
    cast(has_large_injury_claim as boolean) as has_large_injury_claim,
    cast(segment_reason as string) as reason,
    cast(action_code as string) as action_code,
    cast({{ recommended_action_text('action_code') }} as string) as recommended_action,
    -- review order: high-risk first, then the soonest expiry
    cast(row_number() over (
        order by case segment when 'HIGH_RISK' then 0 else 1 end, end_date, policy_no
    ) as bigint) as review_priority
from watched
