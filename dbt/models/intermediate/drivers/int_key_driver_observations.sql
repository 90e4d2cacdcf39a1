-- The observations of the key-driver regressions (docs/definitions.md#key-drivers), one row per
-- outcome and unit, with what each claim stage's survey said:
-- - RENEWAL: a policy due for renewal; y = 1 if renewed. A stage counts with the latest response of
--   that stage on any of the policy's claims given at least key_driver_decision_lead_days before
--   the policy ends (the renewal decision cannot depend on a later one).
-- - LATER_NPS: a claim whose PAYMENT-stage response carries an NPS answer (0-10, the latest such
--   response); y = that NPS. The earlier stages count with their latest response on the same claim
--   given before it.
-- answered_<stage> = 1 when the stage has a response; satisfied_<stage> = 1 when that response is
-- satisfied (score >= satisfied_min_score); a stage without a response has 0 in both.
{%- set stages = ['REPORT', 'SURVEY', 'ASSESSMENT', 'PAYMENT'] %}
with stage_responses as (
    select
        a.response_id, a.stage, a.responded_ts, a.is_satisfied, a.nps,
        cl.claim_no, cl.policy_no, cl.line_of_business
    from {{ ref('int_surveys__attributed') }} as a
    inner join {{ ref('int_claims__milestones') }} as cl on cl.claim_no = a.claim_no
    where a.stage in ('REPORT', 'SURVEY', 'ASSESSMENT', 'PAYMENT')
      and cl.line_of_business is not null
),

renewal_units as (
    select policy_no, line_of_business, renewed, end_date
    from {{ ref('int_policies__renewals') }}
    where is_due_for_renewal
),

renewal_stage as (
    select
        u.policy_no,
        r.stage,
        {{ last_by('r.is_satisfied', ordering_key(['r.responded_ts', 'r.response_id'])) }} as is_satisfied
    from renewal_units as u
    inner join stage_responses as r on r.policy_no = u.policy_no
    where r.responded_ts < {{ dbt.dateadd('day', -var('key_driver_decision_lead_days'), 'u.end_date') }}
    group by u.policy_no, r.stage
),

renewal_observations as (
    select
        'RENEWAL' as outcome,
        u.policy_no as unit_id,
        u.line_of_business,
        case when u.renewed then 1.0 else 0.0 end as y,
        {%- for s in stages %}
        max(case when r.stage = '{{ s }}' then 1 else 0 end) as answered_{{ s | lower }},
        max(case when r.stage = '{{ s }}' and r.is_satisfied then 1 else 0 end) as satisfied_{{ s | lower }}{{ ',' if not loop.last }}
        {%- endfor %}
    from renewal_units as u
    inner join renewal_stage as r on r.policy_no = u.policy_no
    group by u.policy_no, u.line_of_business, u.renewed
),

later_scores as (
    select
        claim_no,
        line_of_business,
        {{ last_by('nps', ordering_key(['responded_ts', 'response_id'])) }} as nps,
        {{ last_by('responded_ts', ordering_key(['responded_ts', 'response_id'])) }} as responded_ts
    from stage_responses
    where stage = 'PAYMENT' and nps is not null
    group by claim_no, line_of_business
),

earlier_stage as (
    select
        l.claim_no,
        r.stage,
        {{ last_by('r.is_satisfied', ordering_key(['r.responded_ts', 'r.response_id'])) }} as is_satisfied
    from later_scores as l
    inner join stage_responses as r on r.claim_no = l.claim_no
    where r.stage in ('REPORT', 'SURVEY', 'ASSESSMENT') and r.responded_ts < l.responded_ts
    group by l.claim_no, r.stage
),

later_observations as (
    select
        'LATER_NPS' as outcome,
        l.claim_no as unit_id,
        l.line_of_business,
        cast(l.nps as double) as y,
        {%- for s in stages %}
        {%- if s == 'PAYMENT' %}
        0 as answered_payment,
        0 as satisfied_payment
        {%- else %}
        max(case when e.stage = '{{ s }}' then 1 else 0 end) as answered_{{ s | lower }},
        max(case when e.stage = '{{ s }}' and e.is_satisfied then 1 else 0 end) as satisfied_{{ s | lower }},
        {%- endif %}
        {%- endfor %}
    from later_scores as l
    left join earlier_stage as e on e.claim_no = l.claim_no
    group by l.claim_no, l.line_of_business, l.nps
)

select * from renewal_observations
union all
select * from later_observations
