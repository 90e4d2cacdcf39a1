-- High-risk profile (高风险客户画像): for each customer attribute value, how over-represented the
-- value is in the HIGH_RISK segment compared with the rated portfolio (customers not yet rated are
-- not counted: they have no segment to compare; their attribute values still get a row, with 0
-- customers while nobody is rated). lift > 1 marks a profile for the underwriting rules
-- (核保政策), docs/definitions.md#mart_high_risk_profile. The share of high-risk customers among
-- the rated claimants (customers with a counted claim) is on every row.

with customers as (
    select
        customer_key,
        segment <> 'NOT_YET_RATED' as is_rated,
        segment = 'HIGH_RISK' as is_high_risk,
        segment <> 'NOT_YET_RATED' and claim_count > 0 as is_claimant,
        business_source,
        primary_line,
        branch_code,
        value_tier
    from {{ ref('dim_customer_segment') }}
),

attribute_values as (
    select 'business_source' as attribute, business_source as value, is_rated, is_high_risk from customers
    union all
    select 'line_of_business', primary_line, is_rated, is_high_risk from customers
    union all
    select 'branch_code', branch_code, is_rated, is_high_risk from customers
    union all
    select 'business_source_x_line', business_source || '|' || primary_line, is_rated, is_high_risk from customers
    union all
    select 'value_tier', value_tier, is_rated, is_high_risk from customers
),

totals as (
    select
        count(case when is_rated then 1 end) as total_customers,
        count(case when is_high_risk then 1 end) as total_high_risk_customers,
        count(case when is_claimant then 1 end) as total_claimants
    from customers
),

counted as (
    select
        attribute,
        value,
        count(case when is_rated then 1 end) as customers,
        count(case when is_high_risk then 1 end) as high_risk_customers
    from attribute_values
    group by attribute, value
)

select
    cast(counted.attribute as string) as attribute,
    cast(counted.value as string) as value,
    cast(counted.customers as bigint) as customers,
    cast(counted.high_risk_customers as bigint) as high_risk_customers,
    cast(totals.total_customers as bigint) as total_customers,
    cast(totals.total_high_risk_customers as bigint) as total_high_risk_customers,
    -- composition of the high-risk segment: share of high-risk customers with this value
    cast({{ safe_ratio('counted.high_risk_customers', 'totals.total_high_risk_customers') }} as double)
        as high_risk_share,
    -- composition of the portfolio: share of all customers with this value
    cast({{ safe_ratio('counted.customers', 'totals.total_customers') }} as double) as portfolio_share,
    -- high-risk rate among customers with this value, and in the whole portfolio
    cast({{ safe_ratio('counted.high_risk_customers', 'counted.customers') }} as double) as high_risk_rate,
    cast({{ safe_ratio('totals.total_high_risk_customers', 'totals.total_customers') }} as double)
        as portfolio_high_risk_rate,
    -- lift = high_risk_share / portfolio_share (equivalently high_risk_rate / portfolio_high_risk_rate)
    cast(
        {{ safe_ratio('cast(counted.high_risk_customers as double) * totals.total_customers',
                      'cast(counted.customers as double) * totals.total_high_risk_customers') }}
        as double) as lift,
    cast(counted.customers < {{ var('min_sample_size') }} as boolean) as low_sample,
    cast(totals.total_claimants as bigint) as total_claimants,
    -- high-risk customers among the rated customers with a counted claim (all high-risk customers
    -- are claimants)
    cast({{ safe_ratio('totals.total_high_risk_customers', 'totals.total_claimants') }} as double)
        as high_risk_share_of_claimants
from counted
cross join totals
