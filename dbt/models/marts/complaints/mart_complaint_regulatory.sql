-- The regulator's complaint indicators (监管投诉指标) per branch x month and per branch x quarter
-- (docs/definitions.md#mart_complaint_regulatory), one row per branch x period (period_type MONTH
-- or QUARTER; never add the two kinds together).
-- Volumes and denominators are mart_complaints' (one meaning per name): received and
-- regulator-routed tickets by received month, premium written in the period, policies in force on
-- the period's last day (for a quarter the data ends inside: the last day of its last month in
-- the data; is_complete_period says which). Density per 10k policies and per ¥100M premium, for all complaints and
-- the regulator-routed ones; the complaint index (NAIC style) = the branch's share of the
-- company's complaints / its share of the company's written premium (1.00 = as expected from its
-- premium); year-on-year change of each density against the same period a year earlier;
-- timeliness of regulator-routed complaints closed in the period (legal deadline, as in
-- mart_complaints); escalation (越级投诉): regulator-routed complaints whose customer complained to the
-- company (any other channel) in the escalation_window_days before. Quarter rows carry the
-- regulator's latest published P&C median at or before the quarter (seed industry_complaint_benchmarks).
{%- set window = var('escalation_window_days') %}
with monthly as (
    select branch_code, month, received, regulator_routed, written_premium, policies_in_force
    from {{ ref('mart_complaints') }}
),

complaints as (
    select * from {{ ref('int_complaints__lifecycle') }}
),

as_of as (
    select as_of_date from {{ ref('int_warehouse__as_of') }}
),

periods as (
    select 'MONTH' as period_type, month as period_start, month_end_date as period_end
    from {{ ref('int_calendar__months') }}
    union all
    select distinct
        'QUARTER' as period_type,
        {{ quarter_start('month') }} as period_start,
        {{ month_end('cast(' ~ dbt.dateadd('month', 2, quarter_start('month')) ~ ' as date)') }} as period_end
    from {{ ref('int_calendar__months') }}
),

first_month as (
    select min(month) as first_month from {{ ref('int_calendar__months') }}
),

regulator_closed as (
    select
        branch_code,
        closed_month as month,
        count(*) as regulator_closed,
        count(case when is_within_deadline then 1 end) as regulator_closed_within_deadline
    from complaints
    where is_regulator_routed and is_closed
    group by branch_code, closed_month
),

-- a regulator-routed ticket whose customer had complained to the company within the window before
escalations as (
    select distinct r.complaint_no, r.branch_code, r.received_month as month
    from complaints as r
    inner join complaints as e
        on e.customer_key = r.customer_key
        and not e.is_regulator_routed
        and e.received_ts < r.received_ts
        and e.received_ts >= {{ dbt.dateadd('day', -window, 'r.received_ts') }}
    where r.is_regulator_routed
),

escalated as (
    select branch_code, month, count(*) as escalated from escalations group by branch_code, month
),

period_months as (
    select
        m.*,
        p.period_type,
        p.period_start,
        p.period_end,
        -- the period's last month in the data (its last month, unless the data ends inside it)
        max(m.month) over (partition by m.branch_code, p.period_type, p.period_start) as last_month
    from monthly as m
    inner join periods as p on m.month >= p.period_start and m.month <= p.period_end
),

per_period as (
    select
        pm.branch_code,
        pm.period_type,
        pm.period_start,
        pm.period_end,
        sum(pm.received) as received,
        sum(pm.regulator_routed) as regulator_routed,
        sum(pm.written_premium) as written_premium,
        -- a stock: the policies in force at the end of the period's last month
        sum(case when pm.month = pm.last_month then pm.policies_in_force else 0 end) as policies_in_force,
        sum(coalesce(rc.regulator_closed, 0)) as regulator_closed,
        sum(coalesce(rc.regulator_closed_within_deadline, 0)) as regulator_closed_within_deadline,
        sum(coalesce(es.escalated, 0)) as escalated
    from period_months as pm
    left join regulator_closed as rc on rc.branch_code = pm.branch_code and rc.month = pm.month
    left join escalated as es on es.branch_code = pm.branch_code and es.month = pm.month
    group by pm.branch_code, pm.period_type, pm.period_start, pm.period_end
),

with_company as (
    select
        pp.*,
        sum(pp.received) over (partition by pp.period_type, pp.period_start) as company_received,
        sum(pp.regulator_routed) over (partition by pp.period_type, pp.period_start) as company_regulator_routed,
        sum(pp.written_premium) over (partition by pp.period_type, pp.period_start) as company_written_premium
    from per_period as pp
),

densities as (
    select
        w.*,
        {{ safe_ratio('w.received * 10000.0', 'w.policies_in_force') }} as per_10k_policies,
        {{ safe_ratio('w.received * 100000000.0', 'w.written_premium') }} as per_100m_premium,
        {{ safe_ratio('w.regulator_routed * 10000.0', 'w.policies_in_force') }} as regulator_per_10k_policies,
        {{ safe_ratio('w.regulator_routed * 100000000.0', 'w.written_premium') }} as regulator_per_100m_premium
    from with_company as w
),

benchmarks as (
    select period_label, period_end, complaints_per_100m_premium, complaints_per_10k_policies, source_document
    from {{ ref('industry_complaint_benchmarks') }}
    where period_type = 'QUARTER' and statistic = 'median'
),

-- the latest published quarter ending on or before the row's quarter
benchmark_for_quarter as (
    select
        d.period_start,
        max(b.period_end) as benchmark_period_end
    from (select distinct period_start, period_end from densities where period_type = 'QUARTER') as d
    inner join benchmarks as b on b.period_end <= d.period_end
    group by d.period_start
)

select
    d.branch_code,
    d.period_type,
    d.period_start,
    d.period_end,
    d.period_start >= f.first_month and d.period_end <= a.as_of_date as is_complete_period,
    cast(d.received as bigint) as received,
    cast(d.regulator_routed as bigint) as regulator_routed,
    cast(d.policies_in_force as bigint) as policies_in_force,
    cast(d.written_premium as decimal(18, 2)) as written_premium,
    d.per_10k_policies,
    d.per_100m_premium,
    d.regulator_per_10k_policies,
    d.regulator_per_100m_premium,
    cast(d.company_received as bigint) as company_received,
    cast(d.company_written_premium as decimal(18, 2)) as company_written_premium,
    {{ safe_ratio('d.received', 'd.company_received') }} as complaint_share,
    {{ safe_ratio('d.written_premium', 'd.company_written_premium') }} as premium_share,
    case when d.company_received > 0 and d.written_premium > 0
        then (cast(d.received as double) / d.company_received)
             / (cast(d.written_premium as double) / d.company_written_premium) end as complaint_index,
    cast(d.company_regulator_routed as bigint) as company_regulator_routed,
    case when d.company_regulator_routed > 0 and d.written_premium > 0
        then (cast(d.regulator_routed as double) / d.company_regulator_routed)
             / (cast(d.written_premium as double) / d.company_written_premium) end as regulator_complaint_index,
    py.per_10k_policies as prior_year_per_10k_policies,
    {{ safe_ratio('d.per_10k_policies - py.per_10k_policies', 'py.per_10k_policies') }} as per_10k_policies_yoy_change,
    py.per_100m_premium as prior_year_per_100m_premium,
    {{ safe_ratio('d.per_100m_premium - py.per_100m_premium', 'py.per_100m_premium') }} as per_100m_premium_yoy_change,
    py.regulator_per_10k_policies as prior_year_regulator_per_10k_policies,
    {{ safe_ratio('d.regulator_per_10k_policies - py.regulator_per_10k_policies', 'py.regulator_per_10k_policies') }}
        as regulator_per_10k_policies_yoy_change,
    py.regulator_per_100m_premium as prior_year_regulator_per_100m_premium,
    {{ safe_ratio('d.regulator_per_100m_premium - py.regulator_per_100m_premium', 'py.regulator_per_100m_premium') }}
        as regulator_per_100m_premium_yoy_change,
    cast(d.regulator_closed as bigint) as regulator_closed,
    cast(d.regulator_closed_within_deadline as bigint) as regulator_closed_within_deadline,
    {{ safe_ratio('d.regulator_closed_within_deadline', 'd.regulator_closed') }} as regulator_within_deadline_share,
    cast(d.escalated as bigint) as escalated,
    {{ safe_ratio('d.escalated', 'd.received') }} as escalation_rate,
    {{ safe_ratio('d.escalated', 'd.regulator_routed') }} as escalated_share_of_regulator_routed,
    b.period_label as industry_period,
    b.complaints_per_100m_premium as industry_regulator_per_100m_premium,
    b.complaints_per_10k_policies as industry_regulator_per_10k_policies,
    b.source_document as industry_source
from densities as d
cross join as_of as a
cross join first_month as f
left join densities as py
    on py.branch_code = d.branch_code
    and py.period_type = d.period_type
    and py.period_start = cast({{ dbt.dateadd('month', -12, 'd.period_start') }} as date)
left join benchmark_for_quarter as bq on d.period_type = 'QUARTER' and bq.period_start = d.period_start
left join benchmarks as b on b.period_end = bq.benchmark_period_end
