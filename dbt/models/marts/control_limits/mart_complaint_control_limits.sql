-- Funnel-plot control limits for branch complaint rates per branch x month
-- (docs/definitions.md#control-limits): complaints received per 10k policies in force against the
-- company's rate of the month, 95% and 99.8% limits widened by the between-branch variance, and a
-- flag that keeps the false-discovery rate of each month's branches at funnel_fdr_q.
with cells as (
    select
        c.branch_code,
        c.month,
        c.received as events,
        c.policies_in_force as trials,
        m.company_received / m.company_in_force as target
    from {{ ref('mart_complaints') }} as c
    inner join (
        select month, cast(sum(received) as double) as company_received, sum(policies_in_force) as company_in_force
        from {{ ref('mart_complaints') }}
        where policies_in_force > 0
        group by month
    ) as m on m.month = c.month
    where c.policies_in_force > 0 and m.company_in_force > 0
),

{{ funnel_limits('cells', ['branch_code', 'month'], ['month'], ['month'], 'rate') }}

select
    branch_code,
    month,
    events as received,
    trials as policies_in_force,
    -- a double before the division: an integer times 10000.0 is a DECIMAL on Spark, and its quotient
    -- keeps only a few decimals
    cast(events as double) * 10000.0 / trials as per_10k_policies,
    target * 10000.0 as company_per_10k_policies,
    z_score,
    family_units as branches_in_funnel,
    overdispersion_phi,
    between_unit_variance as between_branch_variance,
    z_adjusted,
    p_value,
    q_value,
    limit_95_low * 10000.0 as limit_95_low,
    limit_95_high * 10000.0 as limit_95_high,
    limit_998_low * 10000.0 as limit_998_low,
    limit_998_high * 10000.0 as limit_998_high,
    outside_95,
    outside_998,
    coalesce(q_value <= {{ var('funnel_fdr_q') }}, false) as flagged,
    case
        when q_value <= {{ var('funnel_fdr_q') }} and z_adjusted > 0 then 'ABOVE'
        when q_value <= {{ var('funnel_fdr_q') }} and z_adjusted < 0 then 'BELOW'
    end as flag_direction,
    fdr_family_units as branches_tested_in_month
from funnel_limits
