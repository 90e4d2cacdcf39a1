-- Funnel-plot control limits for stage satisfaction per branch x stage x month
-- (docs/definitions.md#control-limits): each branch's CSAT against the company's for the stage and
-- month, 95% and 99.8% limits widened by the between-branch variance the funnel shows (an
-- over-dispersion adjustment), and a flag that keeps the false-discovery rate of each month's
-- branch x stage grid at funnel_fdr_q. These stand beside significantly_below, which tests each
-- cell alone against the company without either adjustment.
with cells as (
    select
        branch_code,
        stage,
        month,
        satisfied as events,
        responses as trials,
        company_csat as target
    from {{ ref('mart_stage_satisfaction') }}
),

{{ funnel_limits('cells', ['branch_code', 'stage', 'month'], ['stage', 'month'], ['month'], 'proportion') }}

select
    branch_code,
    stage,
    month,
    trials as responses,
    events as satisfied,
    cast(events as double) / trials as csat,
    target as company_csat,
    z_score,
    family_units as branches_in_funnel,
    overdispersion_phi,
    between_unit_variance as between_branch_variance,
    z_adjusted,
    p_value,
    q_value,
    limit_95_low,
    limit_95_high,
    limit_998_low,
    limit_998_high,
    outside_95,
    outside_998,
    coalesce(q_value <= {{ var('funnel_fdr_q') }}, false) as flagged,
    case
        when q_value <= {{ var('funnel_fdr_q') }} and z_adjusted < 0 then 'BELOW'
        when q_value <= {{ var('funnel_fdr_q') }} and z_adjusted > 0 then 'ABOVE'
    end as flag_direction,
    fdr_family_units as cells_tested_in_month
from funnel_limits
