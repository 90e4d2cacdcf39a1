-- Customer segment dimension (客户分群): one row per customer (salted key) as of the last day of
-- the data, over the segment window. Rules: docs/definitions.md#customer-segments, thresholds are
-- dbt vars, the expressions live in macros/segments.sql.

with facts as (
    select * from {{ ref('int_customers__period_facts') }}
),

ranked as (
    select
        facts.*,
        -- purchasing power (购买力) peer group: customers of the same branch and primary line.
        -- Ranked on whole cents: the premium is a floating-point sum whose last bits depend on
        -- summation order, which would otherwise break or make ties from one run to the next.
        -- floor(x * 100 + 0.5), not round(x, 2): engines round a double's decimal digits
        -- differently (514.765 -> 514.76 on DuckDB, 514.77 on Spark); floor is exact on both.
        rank() over (
            partition by branch_code, primary_line order by floor(annual_premium * 100 + 0.5) desc
        ) as premium_rank_in_peer_group,
        count(*) over (partition by branch_code, primary_line) as peer_group_customers
    from facts
),

classified as (
    select
        ranked.*,
        {{ customer_segment('claim_count', 'loss_ratio', 'claims_latest_year', 'has_large_injury_claim',
                            'earned_exposure_years') }} as segment,
        {{ customer_segment_reason('claim_count', 'loss_ratio', 'claims_latest_year', 'has_large_injury_claim',
                                   'earned_exposure_years') }} as segment_reason,
        {{ value_tier('premium_rank_in_peer_group', 'peer_group_customers', 'annual_premium',
                      'lines_held', 'max_vehicle_price') }} as value_tier
    from ranked
)

select
    cast(customer_key as string) as customer_key,
    cast(as_of_date as date) as as_of_date,
    cast(window_start_date as date) as window_start_date,
    cast(branch_code as string) as branch_code,
    cast(primary_line as string) as primary_line,
    cast(business_source as string) as business_source,
    cast(policies as bigint) as policies,
    cast(lines_held as bigint) as lines_held,
    cast(written_premium as double) as written_premium,
    cast(net_written_premium as double) as net_written_premium,
    cast(earned_premium as double) as earned_premium,
    cast(annual_premium as double) as annual_premium,
    cast(earned_exposure_years as double) as earned_exposure_years,
    cast(max_vehicle_price as double) as max_vehicle_price,
    cast(claim_count as bigint) as claim_count,
    cast(claims_latest_year as bigint) as claims_latest_year,
    cast(incurred_loss as double) as incurred_loss,
    cast(loss_ratio as double) as loss_ratio,
    cast(has_large_injury_claim as boolean) as has_large_injury_claim,
    cast(claim_free_years as integer) as claim_free_years,
    cast(segment as string) as segment,
    cast({{ segment_label_zh('segment') }} as string) as segment_label_zh,
    cast({{ segment_label_en('segment') }} as string) as segment_label_en,
    cast(segment_reason as string) as segment_reason,
    cast(value_tier as string) as value_tier,
    cast(premium_rank_in_peer_group as bigint) as premium_rank_in_peer_group,
    cast(peer_group_customers as bigint) as peer_group_customers
from classified
