-- Every landed version of every call; int_calls__current picks the version that wins. The CTI
-- writes Chinese code values (呼入/呼出, 报案, 是/否, 接通 ...); they are decoded here to English codes
-- via the code seeds. The caller's phone leaves staging only as phone_key, a salted hash like the
-- customer keys (macro customer_key), so repeat callers can be matched without the number
-- (docs/definitions.md#mart_contact_resolution).

{{ config(materialized=pii_materialization()) }}  {#- a table on Spark: macros/pii.sql -#}

select
    c.call_id,
    dir.code as direction,
    ct.code as call_type,
    ct.label_zh as call_type_label_zh,
    ct.label_en as call_type_label_en,
    c.queue,
    c.policy_no,
    c.claim_no,
    c.agent_id,
    c.branch_code,
    case when c.phone is not null and c.phone <> '' then {{ customer_key("'phone|' || c.phone") }} end as phone_key,
    cast(c.offered_ts as timestamp) as offered_ts,
    cast(c.offered_ts as date) as offered_date,
    cast(c.answered_ts as timestamp) as answered_ts,
    cast(c.ended_ts as timestamp) as ended_ts,
    c.answered_ts is not null as is_answered,
    c.abandoned = '是' as is_abandoned,
    -- queue wait until an agent answered (ASA basis); null when not answered
    {{ duration_seconds('c.offered_ts', 'c.answered_ts') }} as wait_seconds,
    -- talk time; handle time adds after-call work (wrap-up), the AHT basis
    {{ duration_seconds('c.answered_ts', 'c.ended_ts') }} as talk_seconds,
    coalesce(c.wrap_up_seconds, 0) as wrap_up_seconds,
    {{ duration_seconds('c.answered_ts', 'c.ended_ts') }} + coalesce(c.wrap_up_seconds, 0) as handle_seconds,
    oc.code as outcome,
    coalesce(oc.is_reached, false) as is_reached,
    coalesce(oc.is_completed, false) as is_completed,
    c._source_file,
    c._source_line,
    c._partition,
    c._ingested_at
from {{ source('raw', 'call_logs') }} as c
left join {{ ref('codes_call_directions') }} as dir on dir.source_value = c.direction
left join {{ ref('codes_call_types') }} as ct on ct.source_value = c.call_type
left join {{ ref('codes_call_outcomes') }} as oc on oc.source_value = c.outcome
