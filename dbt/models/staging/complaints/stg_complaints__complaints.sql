-- One row per complaint_no: raw.complaints holds each ticket's latest state, chosen at ingest by
-- the one rule for it (the latest updated_ts wins, so a late-arriving older state never does;
-- docs/ingest.md, lib/ingest/complaints.py), and every state in raw.complaints_history. The
-- complainant's name and phone are not selected.

select
    c.complaint_no,
    cast(c.received_ts as timestamp) as received_ts,
    cast(c.received_ts as date) as received_date,
    c.channel,
    ch.label_zh as channel_label_zh,
    ch.label_en as channel_label_en,
    coalesce(ch.is_regulator_routed, false) as is_regulator_routed,
    c.branch_code,
    c.policy_no,
    c.claim_no,
    c.category,
    cat.label_zh as category_label_zh,
    cat.label_en as category_label_en,
    c.is_accepted,
    c.is_duplicate,
    c.is_withdrawn,
    c.liability,
    coalesce(li.is_at_fault, false) as is_at_fault,
    cast(c.extension_level as integer) as extension_level,
    c.status,
    -- a ticket in CLOSED state without a closing time is taken as closed at its last update
    cast(coalesce(c.closed_ts, case when c.status = 'CLOSED' then c.updated_ts end) as timestamp) as closed_ts,
    c.resolution,
    cast(c.updated_ts as timestamp) as updated_ts,
    c._source_file,
    c._partition,
    c._ingested_at
from {{ source('raw', 'complaints') }} as c
left join {{ ref('codes_complaint_channels') }} as ch on ch.code = c.channel
left join {{ ref('codes_complaint_categories') }} as cat on cat.code = c.category
left join {{ ref('codes_complaint_liabilities') }} as li on li.code = c.liability
