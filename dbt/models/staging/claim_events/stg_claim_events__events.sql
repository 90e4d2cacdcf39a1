-- Every landed version of every claim event (a re-sent event in a later file is a new version);
-- int_claim_events__current picks the version that wins.

select
    e.event_id,
    e.claim_no,
    e.policy_no,
    e.event_type,
    et.label_zh as event_label_zh,
    et.label_en as event_label_en,
    cast(e.event_ts as timestamp) as event_ts,
    cast(e.event_ts as date) as event_date,
    cast(e.amount as decimal(14, 2)) as amount,
    e.surveyor_id,
    e.payment_method,
    e.injury = 'Y' as is_injury,
    e.location_type,
    e.report_channel,
    e._source_file,
    e._source_line,
    e._partition,
    e._ingested_at
from {{ source('raw', 'claim_events') }} as e
left join {{ ref('codes_claim_event_types') }} as et on et.code = e.event_type
