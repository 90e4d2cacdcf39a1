-- Every landed version of every policy (a policy reappears in a later file when it changes, e.g. is
-- cancelled); int_policies__current picks the version that wins. Customer PII stops here:
-- customer_id becomes a salted hash; name, ID number and phone are not selected.

{{ config(materialized=pii_materialization()) }}  {#- a table on Spark: macros/pii.sql -#}

select
    p.policy_no,
    {{ customer_key('p.customer_id') }} as customer_key,
    p.branch_code,
    p.line_of_business,
    lob.label_zh as line_label_zh,
    lob.label_en as line_label_en,
    p.business_source,
    bs.label_zh as business_source_label_zh,
    bs.label_en as business_source_label_en,
    cast(p.sum_insured as decimal(16, 2)) as sum_insured,
    cast(p.premium as decimal(14, 2)) as premium,
    cast(p.vehicle_price as decimal(14, 2)) as vehicle_price,
    cast(p.issue_date as date) as issue_date,
    cast(p.start_date as date) as start_date,
    cast(p.end_date as date) as end_date,
    nullif(trim(p.renewal_of), '') as renewal_of,
    p.status,
    p.status = 'CANCELLED' as is_cancelled,
    p._source_file,
    p._source_line,
    p._partition,
    p._ingested_at
from {{ source('raw', 'policies') }} as p
left join {{ ref('lines_of_business') }} as lob on lob.code = p.line_of_business
left join {{ ref('business_sources') }} as bs on bs.code = p.business_source
