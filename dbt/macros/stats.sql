{#- Statistical helpers. Formulas: docs/definitions.md#low-sample. -#}

{#- Continuous percentile (linear interpolation, like numpy's default and PostgreSQL's
    percentile_cont). DuckDB spells it quantile_cont; other engines use
    percentile_cont(p) within group (order by expr). -#}
{% macro percentile_cont(expr, p) -%}
    {{ return(adapter.dispatch('percentile_cont', 'cs_warehouse')(expr, p)) }}
{%- endmacro %}
{% macro duckdb__percentile_cont(expr, p) -%}
    quantile_cont({{ expr }}, {{ p }})
{%- endmacro %}
{% macro default__percentile_cont(expr, p) -%}
    percentile_cont({{ p }}) within group (order by {{ expr }})
{%- endmacro %}

{#- Wilson score interval for x successes in n trials (Brown, Cai & DasGupta 2001):
    centre = (p + z²/2n)/(1 + z²/n), half = z·sqrt(p(1−p)/n + z²/4n²)/(1 + z²/n). Null when n = 0. -#}
{% macro wilson_bound(x, n, z, sign) -%}
    case when ({{ n }}) > 0 then
        (
            (cast({{ x }} as double) / ({{ n }}) + ({{ z }}) * ({{ z }}) / (2.0 * ({{ n }})))
            {{ sign }} ({{ z }}) * sqrt(
                (cast({{ x }} as double) / ({{ n }})) * (1 - cast({{ x }} as double) / ({{ n }})) / ({{ n }})
                + ({{ z }}) * ({{ z }}) / (4.0 * ({{ n }}) * ({{ n }}))
            )
        ) / (1 + ({{ z }}) * ({{ z }}) / ({{ n }}))
    end
{%- endmacro %}
{#- At p = 0 the lower bound is exactly 0 and at p = 1 the upper bound exactly 1; the formula only
    lands there up to rounding (0.9999999999999998), so those ends are set exactly, and the rest is
    clamped to [0, 1]. Null when n is 0 or null (greatest/least skip a null argument, so the clamp
    alone would turn "no data" into 0 or 1). -#}
{% macro wilson_low(x, n, z) -%}
    case when ({{ x }}) = 0 and ({{ n }}) > 0 then 0.0
         when ({{ n }}) > 0 then greatest(0.0, least(1.0, {{ wilson_bound(x, n, z, '-') }})) end
{%- endmacro %}
{% macro wilson_high(x, n, z) -%}
    case when ({{ x }}) = ({{ n }}) and ({{ n }}) > 0 then 1.0
         when ({{ n }}) > 0 then greatest(0.0, least(1.0, {{ wilson_bound(x, n, z, '+') }})) end
{%- endmacro %}

{#- Ratio that is null (not an error, not 0) when the denominator is 0. -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when ({{ denominator }}) > 0 then cast({{ numerator }} as double) / ({{ denominator }}) end
{%- endmacro %}

{#- Duration between two timestamps in fractional units. dbt.datediff counts boundaries crossed
    (whole units), which is wrong for cycle times like 1.5 days; epoch seconds are exact. -#}
{% macro duration_seconds(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('duration_seconds', 'cs_warehouse')(start_ts, end_ts)) }}
{%- endmacro %}
{% macro duckdb__duration_seconds(start_ts, end_ts) -%}
    (epoch({{ end_ts }}) - epoch({{ start_ts }}))
{%- endmacro %}
{#- Spark: microseconds since the epoch, in seconds as a double (1e6 is a double literal). -#}
{% macro spark__duration_seconds(start_ts, end_ts) -%}
    ((unix_micros(cast({{ end_ts }} as timestamp)) - unix_micros(cast({{ start_ts }} as timestamp))) / 1e6)
{%- endmacro %}
{% macro duration_minutes(start_ts, end_ts) -%}({{ duration_seconds(start_ts, end_ts) }} / 60.0){%- endmacro %}
{% macro duration_hours(start_ts, end_ts) -%}({{ duration_seconds(start_ts, end_ts) }} / 3600.0){%- endmacro %}
{% macro duration_days(start_ts, end_ts) -%}({{ duration_seconds(start_ts, end_ts) }} / 86400.0){%- endmacro %}

{#- First day of the month / quarter as a DATE. -#}
{% macro month_start(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}
{% macro quarter_start(expr) -%}
    cast({{ dbt.date_trunc('quarter', expr) }} as date)
{%- endmacro %}
{#- Last day of the month that starts at month_expr (a DATE). -#}
{% macro month_end(month_expr) -%}
    cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, month_expr)) }} as date)
{%- endmacro %}

{#- The value of `value` on the row with the smallest / largest `order_by` (DuckDB arg_min /
    arg_max; Spark min_by / max_by). -#}
{% macro first_by(value, order_by) -%}
    {{ return(adapter.dispatch('first_by', 'cs_warehouse')(value, order_by)) }}
{%- endmacro %}
{% macro last_by(value, order_by) -%}
    {{ return(adapter.dispatch('last_by', 'cs_warehouse')(value, order_by)) }}
{%- endmacro %}
{% macro duckdb__first_by(value, order_by) -%}
    arg_min({{ value }}, {{ order_by }})
{%- endmacro %}
{% macro duckdb__last_by(value, order_by) -%}
    arg_max({{ value }}, {{ order_by }})
{%- endmacro %}
{% macro spark__first_by(value, order_by) -%}
    min_by({{ value }}, {{ order_by }})
{%- endmacro %}
{% macro spark__last_by(value, order_by) -%}
    max_by({{ value }}, {{ order_by }})
{%- endmacro %}

{#- A composite ordering key for first_by / last_by: rows compare on the first expression, then the
    next (DuckDB row values and Spark structs compare lexicographically). -#}
{% macro ordering_key(expressions) -%}
    {{ return(adapter.dispatch('ordering_key', 'cs_warehouse')(expressions)) }}
{%- endmacro %}
{% macro duckdb__ordering_key(expressions) -%}
    ({{ expressions | join(', ') }})
{%- endmacro %}
{% macro spark__ordering_key(expressions) -%}
    struct({{ expressions | join(', ') }})
{%- endmacro %}

{#- A proportion and its Wilson interval as three columns: <name>, <name>_low, <name>_high
    (docs/definitions.md#low-sample). -#}
{% macro proportion_with_interval(x, n, name, z) -%}
    {{ safe_ratio(x, n) }} as {{ name }},
    {{ wilson_low(x, n, z) }} as {{ name }}_low,
    {{ wilson_high(x, n, z) }} as {{ name }}_high
{%- endmacro %}
