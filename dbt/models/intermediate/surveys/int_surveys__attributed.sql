-- Survey responses with the branch they count for (docs/definitions.md#common-rules): a claim-stage response belongs
-- to the branch of the claim's policy, a COMPLAINT-stage response to the complaint's branch.
-- Fallbacks keep every response attributed: the survey's own policy, then the branch code
-- embedded in the claim / complaint / policy number.
-- Built incrementally: a build recomputes the responses with a new version, and the responses
-- attributed through a claim, complaint or policy that changed since the last build.
{{ config(materialized=incremental_materialization(), unique_key='response_id', incremental_strategy='delete+insert') }}

with
{%- if is_incremental() %}
touched_responses as (
    {{ changed_since_watermark(ref('int_surveys__current'), 'response_id') }}
    union
    select response_id from {{ this }}
    where claim_no in ({{ changed_since_watermark(ref('int_claims__milestones'), 'claim_no', '_source_ingested_at') }})
    union
    select response_id from {{ this }}
    where complaint_no in ({{ changed_since_watermark(ref('stg_complaints__complaints'), 'complaint_no') }})
    union
    select response_id from {{ this }}
    where policy_no in ({{ changed_since_watermark(ref('int_policies__current'), 'policy_no') }})
),
{%- endif %}

responses as (
    {{ touched_rows(ref('int_surveys__current'), 'response_id', 'touched_responses') }}
),

claims as (
    select claim_no, branch_code, _source_ingested_at from {{ ref('int_claims__milestones') }}
),

complaints as (
    select complaint_no, branch_code, _ingested_at from {{ ref('stg_complaints__complaints') }}
),

policies as (
    select policy_no, branch_code, _ingested_at from {{ ref('int_policies__current') }}
)

select
    r.response_id,
    r.stage,
    r.channel,
    r.sent_ts,
    r.responded_ts,
    {{ month_start('r.responded_ts') }} as responded_month,
    r.policy_no,
    r.claim_no,
    r.complaint_no,
    r.score,
    r.is_satisfied,
    r.nps,
    case
        when r.stage = 'COMPLAINT' then coalesce(cp.branch_code, substr(r.complaint_no, 3, 2))
        else coalesce(cl.branch_code, po.branch_code, substr(r.claim_no, 3, 2), substr(r.policy_no, 2, 2))
    end as branch_code,
    -- lineage: the newest ingest behind the row (the response or what it is attributed through)
    greatest(r._ingested_at, cl._source_ingested_at, cp._ingested_at, po._ingested_at) as _source_ingested_at
from responses as r
left join claims as cl on cl.claim_no = r.claim_no
left join complaints as cp on cp.complaint_no = r.complaint_no
left join policies as po on po.policy_no = r.policy_no
