-- Every landed version of every survey response; int_surveys__current picks the version that wins.
-- Free-text comments are scrubbed of phone and ID numbers here, so nothing downstream can leak them.

{{ config(materialized=pii_materialization()) }}  {#- a table on Spark: macros/pii.sql -#}

select
    s.response_id,
    s.channel,
    cast(s.sent_ts as timestamp) as sent_ts,
    cast(s.responded_ts as timestamp) as responded_ts,
    s.policy_no,
    s.claim_no,
    s.complaint_no,
    s.stage,
    st.label_zh as stage_label_zh,
    st.label_en as stage_label_en,
    cast(s.score as integer) as score,
    cast(s.score as integer) >= {{ var('satisfied_min_score') }} as is_satisfied,
    cast(s.nps as integer) as nps,
    {{ scrub_pii('s.comment') }} as comment,
    s.agent_id,
    s._source_file,
    s._source_line,
    s._partition,
    s._ingested_at
from {{ source('raw', 'surveys') }} as s
left join {{ ref('stages') }} as st on st.code = s.stage
