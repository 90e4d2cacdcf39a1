{#- Customer segmentation, underwriting feed and branch scorecard rules
    (docs/definitions.md#customer-segments, #mart_branch_scorecard). Each rule is one macro so that
    the models read like the rule table and the dbt unit tests of the models exercise exactly these
    expressions. Thresholds are dbt vars. -#}

{#- Whole years from start_date to end_date, counted like an age: a year counts only once its
    anniversary is reached. dbt.datediff('year') counts calendar-year boundaries instead, which
    would call 2023-12-31 -> 2024-01-01 "one year". -#}
{% macro whole_years_between(start_date, end_date) -%}
    (
        extract(year from {{ end_date }}) - extract(year from {{ start_date }})
        - case
            when extract(month from {{ end_date }}) * 100 + extract(day from {{ end_date }})
               < extract(month from {{ start_date }}) * 100 + extract(day from {{ start_date }})
            then 1 else 0
          end
    )
{%- endmacro %}

{#- Days of the cover period [cover_start, cover_end) inside [from_date, to_date). Dates are read
    as midnight, so end dates are exclusive. Used for pro-rata earned premium (已赚保费) and
    exposure. -#}
{% macro overlap_days(cover_start, cover_end, from_date, to_date) -%}
    greatest(0, {{ dbt.datediff(
        'greatest(' ~ cover_start ~ ', ' ~ from_date ~ ')',
        'least(' ~ cover_end ~ ', ' ~ to_date ~ ')',
        'day') }})
{%- endmacro %}

{#- A policy's term in whole years (at least 1): a one-year term (start .. start + 364 days, or to
    the same day next year) is 1. -#}
{% macro policy_term_years(term_start, term_end) -%}
    greatest(1, round(cast({{ dbt.datediff(term_start, term_end, 'day') }} + 1 as double) / 365.0))
{%- endmacro %}

{#- amount x (days of cover inside the period) / (days of the full term): pro-rata earned premium.
    Multiplied before divided so that whole-day fractions of round amounts stay exact. -#}
{% macro pro_rata_amount(amount, term_start, term_end, cover_end, from_date, to_date) -%}
    case
        when {{ dbt.datediff(term_start, term_end, 'day') }} > 0
        then ({{ amount }}) * cast({{ overlap_days(term_start, cover_end, from_date, to_date) }} as double)
             / {{ dbt.datediff(term_start, term_end, 'day') }}
        else 0.0
    end
{%- endmacro %}

{#- Sum of pro-rata amounts that is the same however the rows are split across threads: each
    floating-point term is fixed to 10 decimals and added as a DECIMAL (exact, order-free). A plain
    sum of doubles can differ in its last bits between two builds of the same data, which is
    enough to flip a half-cent rounding and with it a premium rank (value tier). A term above
    ¥100M (DECIMAL(18, 10)) fails the build loudly rather than round. -#}
{% macro exact_sum(expr) -%}
    sum(cast({{ expr }} as decimal(18, 10)))
{%- endmacro %}

{#- A claim counts towards the claim count k (出险次数) when it is paid, or still open and not
    cancelled, rejected or closed without payment (docs/definitions.md#dim_customer_segment-claim_count). -#}
{% macro is_counted_claim(is_paid, is_closed, is_cancelled, is_rejected, is_zero_closed) -%}
    (
        coalesce({{ is_paid }}, false)
        or not (
            coalesce({{ is_closed }}, false) or coalesce({{ is_cancelled }}, false)
            or coalesce({{ is_rejected }}, false) or coalesce({{ is_zero_closed }}, false)
        )
    )
{%- endmacro %}

{#- The risk conditions. A null loss ratio (earned premium below min_earned_premium_for_lr) never
    triggers a loss-ratio rule: a tiny premium gives a loss ratio too noisy to tier on. A loss ratio
    above high_risk_loss_ratio makes a customer HIGH_RISK only with at least
    high_risk_min_claims_for_loss_ratio counted claims: one claim bigger than the premium is what
    insurance is for (a typical claim is several times a motor premium); with a single claim it
    makes the customer SUB_HEALTHY. -#}
{% macro hr_loss_ratio(loss_ratio, claim_count) -%}
    coalesce({{ loss_ratio }} > {{ var('high_risk_loss_ratio') }}
             and {{ claim_count }} >= {{ var('high_risk_min_claims_for_loss_ratio') }}, false)
{%- endmacro %}
{% macro hr_claims_latest_year(claims_latest_year) -%}
    coalesce({{ claims_latest_year }} >= {{ var('high_risk_claims_latest_year') }}, false)
{%- endmacro %}
{% macro sh_loss_ratio(loss_ratio) -%}
    coalesce({{ loss_ratio }} > {{ var('target_loss_ratio') }}, false)
{%- endmacro %}
{% macro sh_claims_latest_year(claims_latest_year) -%}
    coalesce({{ claims_latest_year }} = {{ var('sub_healthy_claims_latest_year') }}, false)
{%- endmacro %}

{#- A customer is rated once the window holds segment_min_exposure_years policy-years of cover;
    before that the claim history is too short to tell a quality customer from a lucky one. -#}
{% macro is_rated(exposure_years) -%}
    coalesce({{ exposure_years }} >= {{ var('segment_min_exposure_years') }}, false)
{%- endmacro %}

{#- Segment (客户分群), evaluated in order: below the minimum exposure -> NOT_YET_RATED (未评级);
    no counted claim -> QUALITY (优质); any high-risk condition -> HIGH_RISK (高风险); any
    sub-healthy condition (a loss ratio above target, or exactly the sub-healthy claim count in the
    latest year) -> SUB_HEALTHY (亚健康); otherwise HEALTHY (健康). -#}
{% macro customer_segment(claim_count, loss_ratio, claims_latest_year, has_large_injury_claim, exposure_years) -%}
    case
        when not {{ is_rated(exposure_years) }} then 'NOT_YET_RATED'
        when coalesce({{ claim_count }}, 0) = 0 then 'QUALITY'
        when {{ hr_loss_ratio(loss_ratio, claim_count) }}
          or {{ hr_claims_latest_year(claims_latest_year) }}
          or coalesce({{ has_large_injury_claim }}, false) then 'HIGH_RISK'
        when {{ sh_loss_ratio(loss_ratio) }}
          or {{ sh_claims_latest_year(claims_latest_year) }} then 'SUB_HEALTHY'
        else 'HEALTHY'
    end
{%- endmacro %}

{#- Every condition of the assigned segment that holds, as reason codes joined by ', '. -#}
{% macro customer_segment_reason(claim_count, loss_ratio, claims_latest_year, has_large_injury_claim, exposure_years) -%}
    case
        when not {{ is_rated(exposure_years) }} then 'EXPOSURE_BELOW_{{ var("segment_min_exposure_years") }}_POLICY_YEARS'
        when coalesce({{ claim_count }}, 0) = 0 then 'NO_CLAIMS_IN_WINDOW'
        when {{ hr_loss_ratio(loss_ratio, claim_count) }}
          or {{ hr_claims_latest_year(claims_latest_year) }}
          or coalesce({{ has_large_injury_claim }}, false)
        then concat_ws(', ',
            case when {{ hr_loss_ratio(loss_ratio, claim_count) }} then 'LOSS_RATIO_ABOVE_{{ (var("high_risk_loss_ratio") * 100) | int }}PCT_WITH_{{ var("high_risk_min_claims_for_loss_ratio") }}_CLAIMS' end,
            case when {{ hr_claims_latest_year(claims_latest_year) }} then 'CLAIMS_LATEST_YEAR_AT_LEAST_{{ var("high_risk_claims_latest_year") }}' end,
            case when coalesce({{ has_large_injury_claim }}, false) then 'INJURY_CLAIM_AT_LEAST_{{ var("injury_claim_high_risk_amount") | int }}' end)
        when {{ sh_loss_ratio(loss_ratio) }}
          or {{ sh_claims_latest_year(claims_latest_year) }}
        then concat_ws(', ',
            case when {{ sh_loss_ratio(loss_ratio) }} then 'LOSS_RATIO_ABOVE_TARGET_{{ (var("target_loss_ratio") * 100) | int }}PCT' end,
            case when {{ sh_claims_latest_year(claims_latest_year) }} then 'CLAIMS_LATEST_YEAR_{{ var("sub_healthy_claims_latest_year") }}' end)
        else 'WITHIN_TARGET'
    end
{%- endmacro %}

{% macro segment_label_zh(segment) -%}
    case {{ segment }}
        when 'QUALITY' then '优质' when 'HEALTHY' then '健康'
        when 'SUB_HEALTHY' then '亚健康' when 'HIGH_RISK' then '高风险'
        when 'NOT_YET_RATED' then '未评级'
    end
{%- endmacro %}
{% macro segment_label_en(segment) -%}
    case {{ segment }}
        when 'QUALITY' then 'Quality' when 'HEALTHY' then 'Healthy'
        when 'SUB_HEALTHY' then 'Sub-healthy' when 'HIGH_RISK' then 'High-risk'
        when 'NOT_YET_RATED' then 'Not yet rated'
    end
{%- endmacro %}

{#- Value tier by purchasing power (购买力): HIGH when the customer's annual premium ranks within
    the top value_tier_top_share of its branch x primary line (rank <= share x customers, ties
    share the better rank), or the customer holds >= value_tier_min_lines lines, or a vehicle
    price >= value_tier_vehicle_price. -#}
{% macro value_tier(premium_rank, peer_customers, annual_premium, lines_held, max_vehicle_price) -%}
    case
        when (coalesce({{ annual_premium }}, 0) > 0
              and {{ premium_rank }} <= {{ var('value_tier_top_share') }} * {{ peer_customers }})
          or coalesce({{ lines_held }}, 0) >= {{ var('value_tier_min_lines') }}
          or coalesce({{ max_vehicle_price }}, 0) >= {{ var('value_tier_vehicle_price') }}
        then 'HIGH' else 'LOW'
    end
{%- endmacro %}

{#- Underwriting feed (核保政策), docs/definitions.md#mart_underwriting_watchlist. -#}
{% macro recommended_action_code(segment, value_tier) -%}
    case
        when {{ segment }} = 'HIGH_RISK' and {{ value_tier }} = 'LOW' then 'SURCHARGE_OR_DECLINE'
        when {{ segment }} = 'HIGH_RISK' and {{ value_tier }} = 'HIGH' then 'ACCOUNT_REVIEW'
        when {{ segment }} = 'SUB_HEALTHY' then 'RETAIN_AND_WATCH'
    end
{%- endmacro %}
{% macro recommended_action_text(action_code) -%}
    case {{ action_code }}
        when 'SURCHARGE_OR_DECLINE' then 'Surcharge, raise the deductible, restrict cover, or decline renewal (加费/提高免赔额/限制承保/拒绝续保)'
        when 'ACCOUNT_REVIEW' then 'Account review and risk-control visit (客户经营回顾及风险查勘)'
        when 'RETAIN_AND_WATCH' then 'Retain and keep on the watch list (续保并列入观察名单)'
    end
{%- endmacro %}

{#- Scorecard scaling to 0..100. A rate where higher is better scores 100 x rate; a measure
    where lower is better scores 100 at or below `best`, 0 at or above `worst`, linearly between.
    Null in, null out: a missing indicator is left out of the weighted score, not scored 0. -#}
{#- The explicit null branch matters: DuckDB's greatest/least skip nulls, so greatest(0, null)
    would score a missing indicator 0. -#}
{% macro score_rate(rate) -%}
    case when ({{ rate }}) is not null
        then 100.0 * least(1.0, greatest(0.0, {{ rate }})) end
{%- endmacro %}
{% macro score_lower_better(value, best, worst) -%}
    case when ({{ value }}) is not null
        then 100.0 * least(1.0, greatest(0.0, (({{ worst }}) - ({{ value }})) / (({{ worst }}) - ({{ best }})))) end
{%- endmacro %}

{#- Weighted mean over the indicators that are present: sum(w * score) / sum(w) over non-null
    scores; null when none is present. `pairs` is a list of (score_expr, weight). -#}
{#- Rounded to 4 decimals: a weighted mean of scores that are all 100 can otherwise come out as
    100.00000000000001 in floating point and trip the 0..100 range test. -#}
{% macro weighted_score(pairs) -%}
    round(case when ({% for s, w in pairs %}case when {{ s }} is not null then {{ w }} else 0 end{{ ' + ' if not loop.last }}{% endfor %}) > 0
    then ({% for s, w in pairs %}coalesce({{ s }} * {{ w }}, 0){{ ' + ' if not loop.last }}{% endfor %})
       / ({% for s, w in pairs %}case when {{ s }} is not null then {{ w }} else 0 end{{ ' + ' if not loop.last }}{% endfor %})
    end, 4)
{%- endmacro %}

{#- The weighted score of a group of indicators only when every one of them is present. -#}
{% macro complete_weighted_score(pairs) -%}
    case when {% for s, w in pairs %}{{ s }} is not null{{ ' and ' if not loop.last }}{% endfor %}
    then {{ weighted_score(pairs) }} end
{%- endmacro %}

{#- Rating scale of the 2015 service-evaluation system (docs/definitions.md#mart_branch_scorecard). -#}
{% macro service_rating(score) -%}
    case
        when {{ score }} is null then null
        when {{ score }} >= 95 then 'AAA' when {{ score }} >= 90 then 'AA'
        when {{ score }} >= 85 then 'A' when {{ score }} >= 80 then 'BBB'
        when {{ score }} >= 75 then 'BB' when {{ score }} >= 70 then 'B'
        when {{ score }} >= 65 then 'CCC' when {{ score }} >= 60 then 'CC'
        when {{ score }} >= 55 then 'C' else 'D'
    end
{%- endmacro %}
