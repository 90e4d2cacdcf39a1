-- One row per policy: is it due for renewal by the as-of date, and was it renewed (some policy
-- names it in renewal_of)? A cancelled policy is never due.
with policies as (
    select * from {{ ref('stg_policies__policies') }}
),

renewals as (
    select renewal_of as policy_no, min(policy_no) as renewal_policy_no
    from policies
    where renewal_of is not null
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
    r.renewal_policy_no
from policies as p
cross join {{ ref('int_warehouse__as_of') }} as a
left join renewals as r on r.policy_no = p.policy_no
