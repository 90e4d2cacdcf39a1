-- One row per policy: is it due for renewal by the as-of date, and was it renewed (some policy
-- names it in renewal_of)? A cancelled policy is never due.
-- Built incrementally: a build recomputes the policies with a new version, the policies a new
-- version names as renewed, and the policies whose due status the move of the as-of date can
-- flip (those ending between the previous as-of date and this one).
{{ config(materialized=incremental_materialization(), unique_key='policy_no', incremental_strategy='delete+insert') }}

with as_of as (
    select as_of_date from {{ ref('int_warehouse__as_of') }}
),

{%- if is_incremental() %}
previous_as_of as (
    select max(_computed_as_of) as as_of_date from {{ this }}
),

changed_policies as (
    select policy_no, renewal_of from {{ ref('int_policies__current') }}
    where _ingested_at > {{ incremental_watermark() }}
),

touched_policies as (
    select policy_no from changed_policies
    union
    select renewal_of from changed_policies where renewal_of is not null
    union
    select r.policy_no
    from {{ this }} as r, previous_as_of as b, as_of as a
    where r.end_date > least(b.as_of_date, a.as_of_date) and r.end_date <= greatest(b.as_of_date, a.as_of_date)
),
{%- endif %}

policies as (
    {{ touched_rows(ref('int_policies__current'), 'policy_no', 'touched_policies') }}
),

renewals as (
    select renewal_of as policy_no, min(policy_no) as renewal_policy_no
    from {{ ref('int_policies__current') }}
    where renewal_of is not null
    {%- if is_incremental() %}
      and renewal_of in (select policy_no from touched_policies)
    {%- endif %}
    group by renewal_of
)

select
    p.policy_no,
    p.customer_key,
    p.branch_code,
    p.line_of_business,
    p.business_source,
    p.premium,
    p.start_date,
    p.end_date,
    p.status,
    p.status = 'ACTIVE' and p.end_date <= a.as_of_date as is_due_for_renewal,
    r.renewal_policy_no is not null as renewed,
    r.renewal_policy_no,
    -- lineage for incremental builds: the as-of date and the policy version the row was computed for
    a.as_of_date as _computed_as_of,
    p._ingested_at as _source_ingested_at
from policies as p
cross join as_of as a
left join renewals as r on r.policy_no = p.policy_no
