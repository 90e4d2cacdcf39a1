-- One row per customer with a policy in force during the segment window: the facts the
-- segmentation (客户分群) is computed from (docs/definitions.md#segment-window).
-- Window = the last segment_window_years years up to the as-of date, starting no earlier than the
-- first day of claim data: premium and claims over the same exposure window, so that a year
-- without claim data neither earns premium against no losses nor counts as claim-free.
-- Exposure is in policy-years: the earned share of each policy's term (a one-year term fully
-- earned counts 1.0). Written premium is gross (the premium of the policies issued in the
-- window); net_written_premium is what they kept after cancellation refunds.

with as_of as (
    select as_of_date, first_data_date, claims_data_start_date from {{ ref('int_warehouse__as_of') }}
),

params as (
    select
        as_of.as_of_date,
        greatest(
            cast({{ dbt.dateadd('day', 1, dbt.dateadd('year', -var('segment_window_years'), 'as_of.as_of_date')) }} as date),
            as_of.first_data_date,
            as_of.claims_data_start_date
        ) as window_start_date,
        cast({{ dbt.dateadd('day', 1, dbt.dateadd('year', -1, 'as_of.as_of_date')) }} as date) as latest_year_start_date,
        -- dates are read as midnight, so cover up to and including the as-of day ends here
        cast({{ dbt.dateadd('day', 1, 'as_of.as_of_date') }} as date) as window_end_exclusive
    from as_of
),

policies as (
    -- cover (and earned premium) of a cancelled policy stops on the first day a file showed it
    -- cancelled (int_policies__current.cancelled_date); the unearned part is refunded (按日退费)
    select
        p.policy_no,
        p.customer_key,
        p.branch_code,
        p.line_of_business,
        p.business_source,
        p.premium,
        p.vehicle_price,
        p.issue_date,
        p.start_date,
        p.end_date,
        case
            when p.is_cancelled
            then least(p.end_date, greatest(p.start_date, coalesce(p.cancelled_date, p.start_date)))
            else p.end_date
        end as cover_end_date
    from {{ ref('int_policies__current') }} as p
),

window_policies as (
    select
        policies.*,
        params.as_of_date,
        params.window_start_date,
        -- premium kept after a cancellation refund; the full premium otherwise
        {{ pro_rata_amount('policies.premium', 'policies.start_date', 'policies.end_date',
                         'policies.cover_end_date', 'policies.start_date', 'policies.cover_end_date') }}
            as net_premium,
        {{ pro_rata_amount('policies.premium', 'policies.start_date', 'policies.end_date',
                         'policies.cover_end_date', 'params.window_start_date', 'params.window_end_exclusive') }}
            as earned_premium,
        {{ pro_rata_amount('policies.premium', 'policies.start_date', 'policies.end_date',
                         'policies.cover_end_date', 'params.latest_year_start_date', 'params.window_end_exclusive') }}
            as latest_year_earned_premium,
        -- policy-years: the earned share of the term, times the term's length in whole years
        {{ pro_rata_amount(policy_term_years('policies.start_date', 'policies.end_date'),
                         'policies.start_date', 'policies.end_date',
                         'policies.cover_end_date', 'params.window_start_date', 'params.window_end_exclusive') }}
            as earned_exposure_years,
        policies.issue_date between params.window_start_date and params.as_of_date as is_written_in_window
    from policies
    cross join params
    -- in the window: issued by the as-of date, cover not flat-cancelled, and cover not ended
    -- before the window starts
    where policies.issue_date <= params.as_of_date
      and policies.cover_end_date > policies.start_date
      and policies.cover_end_date > params.window_start_date
),

policy_facts as (
    select
        customer_key,
        min(as_of_date) as as_of_date,
        min(window_start_date) as window_start_date,
        count(*) as policies,
        count(distinct line_of_business) as lines_held,
        {{ exact_sum('case when is_written_in_window then premium else 0 end') }} as written_premium,
        {{ exact_sum('case when is_written_in_window then net_premium else 0 end') }} as net_written_premium,
        {{ exact_sum('earned_premium') }} as earned_premium,
        {{ exact_sum('latest_year_earned_premium') }} as annual_premium,
        {{ exact_sum('earned_exposure_years') }} as earned_exposure_years,
        max(vehicle_price) as max_vehicle_price,
        greatest(min(start_date), min(window_start_date)) as first_cover_date,
        -- the customer's largest-premium policy (after any cancellation refund; then the latest
        -- issued, then the highest number) decides branch, primary line and business source
        {%- set primary = ordering_key(['net_premium', 'issue_date', 'policy_no']) %}
        {{ last_by('branch_code', primary) }} as branch_code,
        {{ last_by('line_of_business', primary) }} as primary_line,
        {{ last_by('business_source', primary) }} as business_source
    from window_policies
    group by customer_key
),

window_claims as (
    select
        m.customer_key,
        m.claim_no,
        m.report_date,
        m.is_injury,
        m.report_date >= params.latest_year_start_date as is_latest_year,
        {{ is_counted_claim('m.is_paid', 'm.is_closed', 'm.is_cancelled', 'm.is_rejected', 'm.is_zero_closed') }}
            as is_counted,
        coalesce(m.incurred_amount, 0) as incurred_amount
    from {{ ref('int_claims__milestones') }} as m
    cross join params
    where m.report_date between params.window_start_date and params.as_of_date
),

claim_facts as (
    select
        customer_key,
        count(case when is_counted then claim_no end) as claim_count,
        count(case when is_counted and is_latest_year then claim_no end) as claims_latest_year,
        -- losses of counted claims only: a cancelled, rejected or zero-closed claim costs nothing
        -- even when it carries an estimate
        sum(case when is_counted then incurred_amount else 0 end) as incurred_loss,
        max(case when is_counted and is_injury then incurred_amount end) as max_injury_claim_amount,
        max(case when is_counted then report_date end) as last_claim_date
    from window_claims
    group by customer_key
),

joined as (
    select
        pf.customer_key,
        pf.as_of_date,
        pf.window_start_date,
        pf.branch_code,
        pf.primary_line,
        pf.business_source,
        pf.policies,
        pf.lines_held,
        cast(pf.written_premium as double) as written_premium,
        cast(pf.net_written_premium as double) as net_written_premium,
        cast(pf.earned_premium as double) as earned_premium,
        cast(pf.annual_premium as double) as annual_premium,
        cast(pf.earned_exposure_years as double) as earned_exposure_years,
        cast(pf.max_vehicle_price as double) as max_vehicle_price,
        coalesce(cf.claim_count, 0) as claim_count,
        coalesce(cf.claims_latest_year, 0) as claims_latest_year,
        cast(coalesce(cf.incurred_loss, 0) as double) as incurred_loss,
        cast(cf.max_injury_claim_amount as double) as max_injury_claim_amount,
        cf.last_claim_date,
        pf.first_cover_date
    from policy_facts as pf
    left join claim_facts as cf on cf.customer_key = pf.customer_key
)

select
    customer_key,
    as_of_date,
    window_start_date,
    branch_code,
    primary_line,
    business_source,
    policies,
    lines_held,
    written_premium,
    net_written_premium,
    earned_premium,
    annual_premium,
    earned_exposure_years,
    max_vehicle_price,
    claim_count,
    claims_latest_year,
    incurred_loss,
    -- 赔付率: never on a premium too small to be credible (docs/definitions.md#dim_customer_segment-loss_ratio)
    case
        when earned_premium >= {{ var('min_earned_premium_for_lr') }}
        then incurred_loss / earned_premium
    end as loss_ratio,
    coalesce(max_injury_claim_amount >= {{ var('injury_claim_high_risk_amount') }}, false)
        as has_large_injury_claim,
    max_injury_claim_amount,
    last_claim_date,
    -- consecutive whole claim-free years up to the as-of date, since the last counted claim or
    -- since cover began in the window; capped at the window length like the NCD look-back
    least(
        {{ var('segment_window_years') }},
        greatest(0, {{ whole_years_between('coalesce(last_claim_date, first_cover_date)', 'as_of_date') }})
    ) as claim_free_years
from joined
