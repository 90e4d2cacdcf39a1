-- One row per audit_id (a re-sent month replaces the earlier rows).
with ranked as (
    {{ ranked_versions(source('raw', 'audits'), 'audit_id') }}
)

select
    a.audit_id,
    cast(a.audit_date as date) as audit_date,
    a.branch_code,
    a.auditor_id,
    a.scenario,
    sc.label_zh as scenario_label_zh,
    sc.label_en as scenario_label_en,
    cast(a.surveyor_arrival_minutes as integer) as surveyor_arrival_minutes,
    cast(a.sla_minutes as integer) as sla_minutes,
    cast(a.assessment_score as double) as assessment_score,
    cast(a.payment_convenience_score as double) as payment_convenience_score,
    a.passed = 'Y' as is_passed,
    a.findings,
    a._source_file,
    a._partition
from ranked as a
left join {{ ref('codes_audit_scenarios') }} as sc on sc.code = a.scenario
where a.version_rank = 1
