-- Mystery shopping (模拟赔案/暗访) per branch x quarter of the audit date: pass rate, surveyor
-- arrival against the SLA recorded on the audit, competence and payment-convenience scores.
with audits as (
    select *, {{ quarter_start('audit_date') }} as quarter from {{ ref('stg_audits__audits') }}
)

select
    branch_code,
    quarter,
    count(*) as audits,
    count(case when is_passed then 1 end) as passed,
    cast(count(case when is_passed then 1 end) as double) / count(*) as pass_rate,
    cast(avg(surveyor_arrival_minutes) as double) as arrival_minutes_avg,
    count(surveyor_arrival_minutes) as arrival_measured,
    count(case when surveyor_arrival_minutes <= sla_minutes then 1 end) as arrival_within_sla,
    {{ safe_ratio('count(case when surveyor_arrival_minutes <= sla_minutes then 1 end)', 'count(surveyor_arrival_minutes)') }} as arrival_within_sla_share,
    cast(avg(assessment_score) as double) as assessment_score_avg,
    cast(avg(payment_convenience_score) as double) as payment_convenience_avg
from audits
group by branch_code, quarter
