-- Stage satisfaction per branch x stage x month of response (docs/definitions.md#mart_stage_satisfaction).
-- CSAT is the top-2-box share (score >= satisfied_min_score), never the mean of the scale.
-- Shrinkage: empirical-Bayes beta-binomial. Per stage and month, a Beta(alpha, beta) prior is
-- fitted across the branches by the method of moments: m = mean of branch rates, and the
-- between-branch variance tau2 = var(rates) - m(1-m)*mean(1/n) (the observed variance minus the
-- binomial noise). Then alpha + beta = m(1-m)/tau2 - 1 and csat_shrunk = (alpha + x)/(alpha + beta + n).
-- When tau2 <= 0 (no spread beyond noise) every branch is pulled fully to m.
{%- set z = var('wilson_z') %}
with responses as (
    select * from {{ ref('int_surveys__attributed') }}
),

cells as (
    select
        branch_code,
        stage,
        responded_month as month,
        count(*) as responses,
        count(case when is_satisfied then 1 end) as satisfied,
        avg(score) as mean_score
    from responses
    group by branch_code, stage, responded_month
),

company as (
    select
        stage,
        month,
        cast(sum(satisfied) as double) / sum(responses) as company_csat,
        count(*) as branches,
        avg(cast(satisfied as double) / responses) as mean_rate,
        var_samp(cast(satisfied as double) / responses) as var_rate,
        avg(1.0 / responses) as mean_inverse_n
    from cells
    group by stage, month
),

prior as (
    select
        stage,
        month,
        company_csat,
        mean_rate,
        var_rate - mean_rate * (1 - mean_rate) * mean_inverse_n as between_branch_variance
    from company
),

prior_strength as (
    select
        *,
        case
            when between_branch_variance > 0 and mean_rate > 0 and mean_rate < 1
                then mean_rate * (1 - mean_rate) / between_branch_variance - 1
        end as alpha_plus_beta
    from prior
)

select
    c.branch_code,
    c.stage,
    c.month,
    c.responses,
    c.satisfied,
    cast(c.satisfied as double) / c.responses as csat,
    cast(c.mean_score as double) as mean_score,
    {{ wilson_low('c.satisfied', 'c.responses', z) }} as wilson_low,
    {{ wilson_high('c.satisfied', 'c.responses', z) }} as wilson_high,
    case
        when p.alpha_plus_beta > 0 then p.mean_rate * p.alpha_plus_beta
    end as prior_alpha,
    case
        when p.alpha_plus_beta > 0 then (1 - p.mean_rate) * p.alpha_plus_beta
    end as prior_beta,
    case
        -- no detectable spread between branches: complete pooling
        when p.between_branch_variance is null or p.between_branch_variance <= 0 then p.mean_rate
        -- spread so large that the prior carries no weight: the raw rate
        when p.alpha_plus_beta <= 0 or p.alpha_plus_beta is null then cast(c.satisfied as double) / c.responses
        else (p.mean_rate * p.alpha_plus_beta + c.satisfied) / (p.alpha_plus_beta + c.responses)
    end as csat_shrunk,
    p.company_csat,
    cast(c.satisfied as double) / c.responses - p.company_csat as gap_vs_company,
    c.responses < {{ var('min_sample_size') }} as low_sample,
    coalesce({{ wilson_high('c.satisfied', 'c.responses', z) }} < p.company_csat, false) as significantly_below
from cells as c
inner join prior_strength as p on p.stage = c.stage and p.month = c.month
