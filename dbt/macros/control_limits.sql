{#- Funnel-plot control limits with an over-dispersion adjustment and false-discovery control
    (docs/definitions.md#control-limits). Portable SQL: asin/sin/sqrt/exp, window functions. -#}

{#- Upper tail of the standard normal, 1 - Phi(x) for x >= 0 (Abramowitz & Stegun 26.2.17,
    absolute error below 7.5e-8). -#}
{% macro normal_upper_tail(x) -%}
    (exp(-0.5 * ({{ x }}) * ({{ x }})) / 2.5066282746310002 * (
        0.319381530 * (1.0 / (1.0 + 0.2316419 * ({{ x }})))
        - 0.356563782 * power(1.0 / (1.0 + 0.2316419 * ({{ x }})), 2)
        + 1.781477937 * power(1.0 / (1.0 + 0.2316419 * ({{ x }})), 3)
        - 1.821255978 * power(1.0 / (1.0 + 0.2316419 * ({{ x }})), 4)
        + 1.330274429 * power(1.0 / (1.0 + 0.2316419 * ({{ x }})), 5)))
{%- endmacro %}

{#- (greatest/least ignore nulls on some engines: callers guard nulls themselves.) -#}

{#- Variance-stabilising transforms with Anscombe's small-count correction (Anscombe 1948): a
    proportion x/n on the angular scale asin(sqrt((x + 3/8)/(n + 3/4))), variance 1/(4(n + 1/2));
    a rate x/E on the square-root scale sqrt((x + 3/8)/E), variance 1/(4E). The target (the company
    value) is transformed without the correction. -#}
{% macro funnel_observed(events, trials, kind) -%}
    {%- if kind == 'proportion' -%} asin(sqrt((cast({{ events }} as double) + 0.375) / ({{ trials }} + 0.75)))
    {%- elif kind == 'rate' -%} sqrt((cast({{ events }} as double) + 0.375) / {{ trials }})
    {%- else -%} {{ exceptions.raise_compiler_error("funnel_observed: kind is 'proportion' or 'rate', got " ~ kind) }}
    {%- endif -%}
{%- endmacro %}
{% macro funnel_target(target, kind) -%}
    {%- if kind == 'proportion' -%} asin(sqrt({{ target }})) {%- else -%} sqrt({{ target }}) {%- endif -%}
{%- endmacro %}
{% macro funnel_se(trials, kind) -%}
    {%- if kind == 'proportion' -%} 1.0 / (2.0 * sqrt(cast({{ trials }} as double) + 0.5))
    {%- else -%} 1.0 / (2.0 * sqrt(cast({{ trials }} as double))) {%- endif -%}
{%- endmacro %}
{#- A limit y on the transformed scale back as the observed value x/n (x/E) that transforms to it,
    so that a unit is outside a limit on the plot exactly when it is outside it on the tested scale
    (the Anscombe correction moves the limits of a small unit a little off the symmetric band). -#}
{% macro funnel_back_transform(y, trials, kind) -%}
    {%- if kind == 'proportion' -%}
    greatest(0.0, least(1.0, (({{ trials }} + 0.75) * power(sin(least(greatest({{ y }}, 0.0), pi() / 2)), 2) - 0.375) / {{ trials }}))
    {%- else -%}
    greatest(0.0, ({{ trials }} * power(greatest({{ y }}, 0.0), 2) - 0.375) / {{ trials }})
    {%- endif -%}
{%- endmacro %}

{#- Student's t with nu degrees of freedom as a standard normal (Abramowitz & Stegun 26.7.8):
    z = t (1 - 1/(4 nu)) / sqrt(1 + t^2/(2 nu)); slightly conservative in the far tail. And its
    inverse: the t that this maps to z, i.e. the limit multiplier of a z-level limit. -#}
{% macro t_as_normal(t, nu) -%}
    (({{ t }}) * (1 - 1.0 / (4 * ({{ nu }}))) / sqrt(1 + ({{ t }}) * ({{ t }}) / (2.0 * ({{ nu }}))))
{%- endmacro %}
{% macro t_multiplier(z, nu) -%}
    ({{ z }} / sqrt(power(1 - 1.0 / (4 * ({{ nu }})), 2) - {{ z }} * {{ z }} / (2.0 * ({{ nu }}))))
{%- endmacro %}

{#- The CTEs funnel_* over `cells`, a CTE with one row per unit: the columns `events` (x),
    `trials` (n: responses, or exposure for a rate), `target` (the company value) and the key
    columns. `od_by`: the columns of one funnel (the units compared with each other, over which the
    over-dispersion is estimated); `fdr_by`: the columns of one false-discovery family. The last
    CTE, funnel_limits, has every column of `cells` plus the statistics; the caller selects from it.

    Over-dispersion (Spiegelhalter 2005, additive random effects), made robust to an outlying large
    unit: the spread is measured around the funnel's median on the transformed scale (a large unit
    far off drags the company value, which would make every other unit look off), winsorised at the
    10th and 90th percentiles and scaled by 1/0.6787 (the second moment of a standard normal
    winsorised there), so that phi is 1 without over-dispersion. The test of each unit uses
    Student's t with (units - 2) degrees of freedom, since tau2 is estimated from those units; a
    funnel of fewer than `funnel_min_units` units is not tested. -#}
{% macro funnel_limits(cells, key_columns, od_by, fdr_by, kind) -%}
{%- set winsor_second_moment = 0.6786545589528744 -%}
{%- set z_95 = 1.959963984540054 -%}
{%- set z_998 = 3.090232306167813 -%}
{%- set min_units = var('funnel_min_units') -%}
funnel_scaled as (
    select
        c.*,
        {{ funnel_observed('c.events', 'c.trials', kind) }} as funnel_y,
        {{ funnel_target('c.target', kind) }} as funnel_y0,
        {{ funnel_se('c.trials', kind) }} as funnel_se
    from {{ cells }} as c
    where c.trials > 0
),

funnel_centre as (
    select {{ od_by | join(', ') }}, {{ percentile_cont('funnel_y', 0.5) }} as funnel_median
    from funnel_scaled
    group by {{ od_by | join(', ') }}
),

funnel_z as (
    select
        s.*,
        (s.funnel_y - s.funnel_y0) / s.funnel_se as z_score,
        (s.funnel_y - m.funnel_median) / s.funnel_se as z_centred
    from funnel_scaled as s
    inner join funnel_centre as m on {% for col in od_by %}{% if not loop.first %} and {% endif %}m.{{ col }} = s.{{ col }}{% endfor %}
),

funnel_winsor as (
    select
        {{ od_by | join(', ') }},
        {{ percentile_cont('z_centred', 0.1) }} as z_low,
        {{ percentile_cont('z_centred', 0.9) }} as z_high
    from funnel_z
    group by {{ od_by | join(', ') }}
),

-- phi = mean of the winsorised squared centred z-scores / 0.6787; between-unit variance
-- tau2 = (I*phi - (I - 1)) / (sum w - sum w^2 / sum w), w = 1/se^2, when I*phi > I - 1.
funnel_dispersion as (
    select
        {% for col in od_by %}z.{{ col }}, {% endfor %}
        count(*) as family_units,
        avg(power(least(greatest(z.z_centred, w.z_low), w.z_high), 2)) / {{ winsor_second_moment }} as overdispersion_phi,
        sum(1.0 / (z.funnel_se * z.funnel_se)) as sum_w,
        sum(1.0 / power(z.funnel_se, 4)) as sum_w2
    from funnel_z as z
    inner join funnel_winsor as w on {% for col in od_by %}{% if not loop.first %} and {% endif %}w.{{ col }} = z.{{ col }}{% endfor %}
    group by {% for col in od_by %}{% if not loop.first %}, {% endif %}z.{{ col }}{% endfor %}
),

funnel_tau as (
    select
        *,
        case
            when family_units > 1 and family_units * overdispersion_phi > family_units - 1
                 and sum_w - sum_w2 / sum_w > 0
                then (family_units * overdispersion_phi - (family_units - 1)) / (sum_w - sum_w2 / sum_w)
            else 0.0
        end as between_unit_variance,
        family_units >= {{ min_units }} as is_tested
    from funnel_dispersion
),

funnel_adjusted as (
    select
        z.*,
        t.family_units,
        t.overdispersion_phi,
        t.between_unit_variance,
        t.is_tested,
        sqrt(z.funnel_se * z.funnel_se + t.between_unit_variance) as funnel_se_adjusted,
        case when t.is_tested then {{ t_multiplier(z_95, 't.family_units - 2') }} end as multiplier_95,
        case when t.is_tested then {{ t_multiplier(z_998, 't.family_units - 2') }} end as multiplier_998
    from funnel_z as z
    inner join funnel_tau as t on {% for col in od_by %}{% if not loop.first %} and {% endif %}t.{{ col }} = z.{{ col }}{% endfor %}
),

funnel_tested as (
    select
        *,
        (funnel_y - funnel_y0) / funnel_se_adjusted as z_adjusted,
        case when is_tested then 2.0 * {{ normal_upper_tail(t_as_normal('abs((funnel_y - funnel_y0) / funnel_se_adjusted)', 'family_units - 2')) }}
        end as p_value
    from funnel_adjusted
),

-- Benjamini-Hochberg within each family of tested units: q_(i) = min over j >= i of p_(j) * m / j.
funnel_ranked as (
    select
        *,
        case when is_tested then row_number() over (
            partition by {{ fdr_by | join(', ') }}, is_tested order by p_value, {{ key_columns | join(', ') }}) end as p_rank,
        count(case when is_tested then 1 end) over (partition by {{ fdr_by | join(', ') }}) as fdr_family_units
    from funnel_tested
),

funnel_limits as (
    select
        *,
        case when is_tested then least(1.0, min(p_value * fdr_family_units / p_rank) over (
            partition by {{ fdr_by | join(', ') }}, is_tested order by p_rank desc
            rows between unbounded preceding and current row)) end as q_value,
        case when is_tested then {{ funnel_back_transform('funnel_y0 - multiplier_95 * funnel_se_adjusted', 'trials', kind) }} end as limit_95_low,
        case when is_tested then {{ funnel_back_transform('funnel_y0 + multiplier_95 * funnel_se_adjusted', 'trials', kind) }} end as limit_95_high,
        case when is_tested then {{ funnel_back_transform('funnel_y0 - multiplier_998 * funnel_se_adjusted', 'trials', kind) }} end as limit_998_low,
        case when is_tested then {{ funnel_back_transform('funnel_y0 + multiplier_998 * funnel_se_adjusted', 'trials', kind) }} end as limit_998_high,
        coalesce(abs((funnel_y - funnel_y0) / funnel_se_adjusted) > multiplier_95, false) as outside_95,
        coalesce(abs((funnel_y - funnel_y0) / funnel_se_adjusted) > multiplier_998, false) as outside_998
    from funnel_ranked
)
{%- endmacro %}
