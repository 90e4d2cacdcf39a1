-- Branch scorecard (机构服务评价): the headline KPIs of every branch and month side by side, a
-- service-evaluation score (0..100) weighted like the regulator's 2015 indicator system
-- (保险公司服务评价管理办法, docs/definitions.md#mart_branch_scorecard), its rating and ranks per month.
--
-- Indicators and their stand-ins in this warehouse (weights: var scorecard_weights):
--   sales, underwriting & consultation 30%:
--     电话呼入人工接通率  manual answer rate                       -> 100 x rate
--     客服代表满意率      REPORT-stage CSAT (the call-centre stage) -> 100 x rate
--     承保理赔查询异议处理率  no inquiry-objection log exists; the 20-second service level of the
--                       hotline stands in for how promptly inquiries are handled -> 100 x rate
--   claims 45%:
--     立案结案率          rolling claim closure rate                -> 100 x rate
--     案均报案支付周期    mean report-to-payment days of the claims paid in the month (the
--                       regulator's 案均: per claim paid in the period): 100 at or below best,
--                       0 at or above worst, linear between
--     理赔获赔率          claim acceptance rate                     -> 100 x rate
--   complaints 25%, over the trailing scorecard_complaint_window_months (12) so that a branch's
--   handful of complaints a month does not swing its score from 100 to 0:
--     投诉率              complaints per 10k policy-years in force: 100 at best, 0 at worst, linear
--     投诉件办理及时率    share closed within the legal deadline    -> 100 x rate
-- Every indicator score is continuous in its measure. A branch-month with fewer than
-- scorecard_min_indicators indicators present gets no composite score, rating or rank (is_scored
-- false, indicators_missing names them): renormalising the weights over what is left would rank a
-- branch on a different scale from the others. Pillar scores need all of their indicators.

{%- set w = var('scorecard_weights') %}
{%- set cycle = var('scorecard_payment_cycle_days') %}
{%- set crate = var('scorecard_complaints_per_10k_policy_years') %}
{%- set cwin = var('scorecard_complaint_window_months') %}

with satisfaction as (
    select
        branch_code,
        month,
        sum(responses) as survey_responses,
        sum(satisfied) as survey_satisfied,
        sum(case when stage = 'REPORT' then responses else 0 end) as report_stage_responses,
        sum(case when stage = 'REPORT' then satisfied else 0 end) as report_stage_satisfied
    from {{ ref('mart_stage_satisfaction') }}
    group by branch_code, month
),

claims as (
    select branch_code, month, claims_reported, claims_closed, closure_rate,
           report_to_payment_days_p50, acceptance_rate, paid_within_10d_share
    from {{ ref('mart_claim_cycle') }}
),

calls as (
    select branch_code, month, offered, answered, manual_answer_rate, service_level_20s
    from {{ ref('mart_call_center_monthly') }}
),

complaints as (
    select branch_code, month, received, valid, per_10k_policies, within_deadline_share,
           handling_days_p90, policies_in_force, closed, closed_within_deadline
    from {{ ref('mart_complaints') }}
),

-- trailing window of the complaint indicators: the month and the cwin - 1 months before it
complaints_window as (
    select
        c.branch_code,
        c.month,
        sum(w.received) as complaints_window,
        -- policy-years in force: the month-end counts, each standing for one month of cover
        cast(sum(w.policies_in_force) as double) / 12.0 as policy_years_window,  -- a DECIMAL on Spark otherwise
        sum(w.closed) as complaints_closed_window,
        sum(w.closed_within_deadline) as closed_within_deadline_window
    from complaints as c
    inner join complaints as w
        on w.branch_code = c.branch_code
        and w.month <= c.month
        and w.month > cast({{ dbt.dateadd('month', -cwin, 'c.month') }} as date)
    group by c.branch_code, c.month
),

paid_claims as (
    select
        branch_code,
        {{ month_start('paid_ts') }} as month,
        count(*) as claims_paid,
        avg(report_to_payment_days) as report_to_payment_days_mean
    from {{ ref('int_claims__milestones') }}
    where paid_ts is not null
    group by branch_code, {{ month_start('paid_ts') }}
),

winback as (
    select branch_code, month, due_for_renewal, renewed, winback_rate
    from {{ ref('mart_winback') }}
),

-- closing the loop (docs/definitions.md#mart_followup, #mart_contact_resolution,
-- #mart_complaint_regulatory): follow-up cases by the month they opened, contacts summed over the
-- inbound queues, the month's complaint index
followup as (
    select branch_code, month, cases_opened, cases_decided, overdue, overdue_share, overdue_at_month_end
    from {{ ref('mart_followup') }}
),

contact_resolution as (
    select branch_code, month, sum(contacts) as contacts, sum(repeat_contacts) as repeat_contacts,
           sum(first_contacts) as first_contacts
    from {{ ref('mart_contact_resolution') }}
    group by branch_code, month
),

regulatory as (
    select branch_code, period_start as month, complaint_index, regulator_per_10k_policies
    from {{ ref('mart_complaint_regulatory') }}
    where period_type = 'MONTH'
),

spine as (
    select branch_code, month from satisfaction
    union
    select branch_code, month from claims
    union
    select branch_code, month from calls
    union
    select branch_code, month from complaints
    union
    select branch_code, month from winback
),

side_by_side as (
    select
        spine.branch_code,
        spine.month,
        sat.survey_responses,
        sat.survey_satisfied,
        {{ safe_ratio('sat.survey_satisfied', 'sat.survey_responses') }} as csat_overall,
        sat.report_stage_responses,
        sat.report_stage_satisfied,
        {{ safe_ratio('sat.report_stage_satisfied', 'sat.report_stage_responses') }} as report_stage_csat,
        cl.claims_reported,
        cl.claims_closed,
        cl.closure_rate,
        cl.report_to_payment_days_p50,
        cl.acceptance_rate,
        cl.paid_within_10d_share,
        ca.offered as calls_offered,
        ca.answered as calls_answered,
        ca.manual_answer_rate,
        ca.service_level_20s,
        co.received as complaints_received,
        co.valid as complaints_valid,
        co.per_10k_policies as complaints_per_10k_policies,
        co.within_deadline_share,
        co.handling_days_p90 as complaint_handling_days_p90,
        cw.complaints_window,
        cw.policy_years_window,
        {{ safe_ratio('cw.complaints_window * 10000.0', 'cw.policy_years_window') }} as complaints_per_10k_policy_years_window,
        cw.complaints_closed_window,
        cw.closed_within_deadline_window,
        {{ safe_ratio('cw.closed_within_deadline_window', 'cw.complaints_closed_window') }} as within_deadline_share_window,
        pc.claims_paid,
        pc.report_to_payment_days_mean,
        wb.due_for_renewal as winback_due_for_renewal,
        wb.renewed as winback_renewed,
        wb.winback_rate,
        fu.cases_opened as followup_cases_opened,
        fu.cases_decided as followup_cases_decided,
        fu.overdue as followup_overdue,
        fu.overdue_share as followup_overdue_share,
        fu.overdue_at_month_end as followup_overdue_at_month_end,
        cr.contacts as inbound_contacts,
        cr.repeat_contacts,
        cr.first_contacts,
        {{ safe_ratio('cr.first_contacts', 'cr.contacts') }} as first_contact_resolution,
        rg.complaint_index,
        rg.regulator_per_10k_policies
    from spine
    left join satisfaction as sat on sat.branch_code = spine.branch_code and sat.month = spine.month
    left join claims as cl on cl.branch_code = spine.branch_code and cl.month = spine.month
    left join calls as ca on ca.branch_code = spine.branch_code and ca.month = spine.month
    left join complaints as co on co.branch_code = spine.branch_code and co.month = spine.month
    left join winback as wb on wb.branch_code = spine.branch_code and wb.month = spine.month
    left join complaints_window as cw on cw.branch_code = spine.branch_code and cw.month = spine.month
    left join paid_claims as pc on pc.branch_code = spine.branch_code and pc.month = spine.month
    left join followup as fu on fu.branch_code = spine.branch_code and fu.month = spine.month
    left join contact_resolution as cr on cr.branch_code = spine.branch_code and cr.month = spine.month
    left join regulatory as rg on rg.branch_code = spine.branch_code and rg.month = spine.month
    where spine.branch_code is not null
),

scored as (
    select
        side_by_side.*,
        {{ score_rate('manual_answer_rate') }} as score_manual_answer,
        {{ score_rate('report_stage_csat') }} as score_agent_satisfaction,
        {{ score_rate('service_level_20s') }} as score_inquiry_handling,
        {{ score_rate('closure_rate') }} as score_claim_closure,
        {{ score_lower_better('report_to_payment_days_mean', cycle['best'], cycle['worst']) }} as score_payment_cycle,
        {{ score_rate('acceptance_rate') }} as score_claim_acceptance,
        {{ score_lower_better('complaints_per_10k_policy_years_window', crate['best'], crate['worst']) }} as score_complaint_rate,
        {{ score_rate('within_deadline_share_window') }} as score_timely_handling
    from side_by_side
),

{%- set sales_pairs = [('score_manual_answer', w['manual_answer_rate']), ('score_agent_satisfaction', w['agent_satisfaction']), ('score_inquiry_handling', w['inquiry_handling'])] %}
{%- set claims_pairs = [('score_claim_closure', w['claim_closure_rate']), ('score_payment_cycle', w['report_to_payment_cycle']), ('score_claim_acceptance', w['claim_acceptance_rate'])] %}
{%- set complaint_pairs = [('score_complaint_rate', w['complaint_rate']), ('score_timely_handling', w['timely_complaint_handling'])] %}

{%- set all_pairs = sales_pairs + claims_pairs + complaint_pairs %}
counted as (
    select
        scored.*,
        ({% for s, _ in all_pairs %}case when {{ s }} is not null then 1 else 0 end{{ ' + ' if not loop.last }}{% endfor %})
            as indicators_scored,
        concat_ws(', '{% for s, _ in all_pairs %}, case when {{ s }} is null then '{{ s | replace("score_", "") }}' end{% endfor %})
            as indicators_missing
    from scored
),

evaluated as (
    select
        counted.*,
        counted.indicators_scored >= {{ var('scorecard_min_indicators') }} as is_scored,
        {{ complete_weighted_score(sales_pairs) }} as sales_service_score,
        {{ complete_weighted_score(claims_pairs) }} as claims_service_score,
        {{ complete_weighted_score(complaint_pairs) }} as complaints_service_score,
        case when counted.indicators_scored >= {{ var('scorecard_min_indicators') }}
            then {{ weighted_score(all_pairs) }} end as service_evaluation_score
    from counted
)

select
    cast(e.branch_code as string) as branch_code,
    cast(b.name_zh as string) as branch_name_zh,
    cast(b.name_en as string) as branch_name_en,
    cast(e.month as date) as month,
    cast(e.survey_responses as bigint) as survey_responses,
    cast(e.survey_satisfied as bigint) as survey_satisfied,
    cast(e.csat_overall as double) as csat_overall,
    cast(e.report_stage_responses as bigint) as report_stage_responses,
    cast(e.report_stage_satisfied as bigint) as report_stage_satisfied,
    cast(e.report_stage_csat as double) as report_stage_csat,
    cast(e.claims_reported as bigint) as claims_reported,
    cast(e.claims_closed as bigint) as claims_closed,
    cast(e.closure_rate as double) as closure_rate,
    cast(e.report_to_payment_days_p50 as double) as report_to_payment_days_p50,
    cast(e.acceptance_rate as double) as acceptance_rate,
    cast(e.paid_within_10d_share as double) as paid_within_10d_share,
    cast(e.calls_offered as bigint) as calls_offered,
    cast(e.calls_answered as bigint) as calls_answered,
    cast(e.manual_answer_rate as double) as manual_answer_rate,
    cast(e.service_level_20s as double) as service_level_20s,
    cast(e.complaints_received as bigint) as complaints_received,
    cast(e.complaints_valid as bigint) as complaints_valid,
    cast(e.complaints_per_10k_policies as double) as complaints_per_10k_policies,
    cast(e.within_deadline_share as double) as within_deadline_share,
    cast(e.complaint_handling_days_p90 as double) as complaint_handling_days_p90,
    cast(e.complaints_window as bigint) as complaints_window,
    cast(e.policy_years_window as double) as policy_years_window,
    cast(e.complaints_per_10k_policy_years_window as double) as complaints_per_10k_policy_years_window,
    cast(e.complaints_closed_window as bigint) as complaints_closed_window,
    cast(e.closed_within_deadline_window as bigint) as closed_within_deadline_window,
    cast(e.within_deadline_share_window as double) as within_deadline_share_window,
    cast(e.claims_paid as bigint) as claims_paid,
    cast(e.report_to_payment_days_mean as double) as report_to_payment_days_mean,
    cast(e.winback_due_for_renewal as bigint) as winback_due_for_renewal,
    cast(e.winback_renewed as bigint) as winback_renewed,
    cast(e.winback_rate as double) as winback_rate,
    cast(e.score_manual_answer as double) as score_manual_answer,
    cast(e.score_agent_satisfaction as double) as score_agent_satisfaction,
    cast(e.score_inquiry_handling as double) as score_inquiry_handling,
    cast(e.score_claim_closure as double) as score_claim_closure,
    cast(e.score_payment_cycle as double) as score_payment_cycle,
    cast(e.score_claim_acceptance as double) as score_claim_acceptance,
    cast(e.score_complaint_rate as double) as score_complaint_rate,
    cast(e.score_timely_handling as double) as score_timely_handling,
    cast(e.sales_service_score as double) as sales_service_score,
    cast(e.claims_service_score as double) as claims_service_score,
    cast(e.complaints_service_score as double) as complaints_service_score,
    cast(e.service_evaluation_score as double) as service_evaluation_score,
    cast(e.indicators_scored as integer) as indicators_scored,
    cast(nullif(e.indicators_missing, '') as string) as indicators_missing,
    cast(e.is_scored as boolean) as is_scored,
    cast({{ service_rating('e.service_evaluation_score') }} as string) as service_rating,
    -- ranks within the month; 1 = best. The evaluation rank is a strict 1..n order over the scored
    -- branches (ties by branch code), null for an unscored branch-month; KPI ranks let ties share
    -- a rank.
    cast(case when e.is_scored then row_number() over (
        partition by e.month, e.is_scored
        order by e.service_evaluation_score desc, e.branch_code
    ) end as bigint) as service_evaluation_rank,
    cast(count(case when e.is_scored then 1 end) over (partition by e.month) as bigint) as branches_scored_in_month,
    cast(rank() over (partition by e.month order by e.csat_overall desc nulls last) as bigint) as csat_rank,
    cast(rank() over (partition by e.month order by e.closure_rate desc nulls last) as bigint) as closure_rate_rank,
    cast(rank() over (partition by e.month order by e.report_to_payment_days_p50 asc nulls last) as bigint)
        as payment_cycle_rank,
    cast(rank() over (partition by e.month order by e.manual_answer_rate desc nulls last) as bigint)
        as manual_answer_rank,
    cast(rank() over (partition by e.month order by e.complaints_per_10k_policies asc nulls last) as bigint)
        as complaint_rate_rank,
    cast(count(*) over (partition by e.month) as bigint) as branches_in_month,
    cast(e.followup_cases_opened as bigint) as followup_cases_opened,
    cast(e.followup_cases_decided as bigint) as followup_cases_decided,
    cast(e.followup_overdue as bigint) as followup_overdue,
    cast(e.followup_overdue_share as double) as followup_overdue_share,
    cast(e.followup_overdue_at_month_end as bigint) as followup_overdue_at_month_end,
    cast(e.inbound_contacts as bigint) as inbound_contacts,
    cast(e.repeat_contacts as bigint) as repeat_contacts,
    cast(e.first_contacts as bigint) as first_contacts,
    cast(e.first_contact_resolution as double) as first_contact_resolution,
    cast(e.complaint_index as double) as complaint_index,
    cast(e.regulator_per_10k_policies as double) as regulator_per_10k_policies
from evaluated as e
left join {{ ref('branches') }} as b on b.code = e.branch_code
