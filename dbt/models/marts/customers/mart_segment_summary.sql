-- Segment summary per branch x primary line x segment x value tier (分群汇总): customers,
-- premium, losses, loss ratio and the cell's share of its branch x line.

with customers as (
    select * from {{ ref('dim_customer_segment') }}
),

cells as (
    select
        branch_code,
        primary_line as line,
        segment,
        value_tier,
        count(*) as customers,
        sum(policies) as policies,
        sum(claim_count) as claim_count,
        sum(written_premium) as written_premium,
        sum(net_written_premium) as net_written_premium,
        sum(earned_premium) as earned_premium,
        sum(incurred_loss) as incurred_loss
    from customers
    group by branch_code, primary_line, segment, value_tier
),

with_totals as (
    select
        cells.*,
        sum(customers) over (partition by branch_code, line) as branch_line_customers,
        sum(earned_premium) over (partition by branch_code, line) as branch_line_earned_premium,
        sum(incurred_loss) over (partition by branch_code, line) as branch_line_incurred_loss
    from cells
)

select
    cast(branch_code as string) as branch_code,
    cast(line as string) as line,
    cast(segment as string) as segment,
    cast({{ segment_label_zh('segment') }} as string) as segment_label_zh,
    cast({{ segment_label_en('segment') }} as string) as segment_label_en,
    cast(value_tier as string) as value_tier,
    cast(customers as bigint) as customers,
    cast(policies as bigint) as policies,
    cast(claim_count as bigint) as claim_count,
    cast(written_premium as double) as written_premium,
    cast(net_written_premium as double) as net_written_premium,
    cast(earned_premium as double) as earned_premium,
    cast(incurred_loss as double) as incurred_loss,
    -- pooled loss ratio of the cell: losses over earned premium, null on no earned premium
    cast({{ safe_ratio('incurred_loss', 'earned_premium') }} as double) as loss_ratio,
    cast(branch_line_customers as bigint) as branch_line_customers,
    cast({{ safe_ratio('customers', 'branch_line_customers') }} as double) as customer_share,
    cast(branch_line_earned_premium as double) as branch_line_earned_premium,
    cast({{ safe_ratio('earned_premium', 'branch_line_earned_premium') }} as double) as premium_share,
    cast(branch_line_incurred_loss as double) as branch_line_incurred_loss,
    cast({{ safe_ratio('incurred_loss', 'branch_line_incurred_loss') }} as double) as loss_share
from with_totals
