{#- Legal clocks (docs/definitions.md#legal-clocks). Chinese law counts a period of N days in
    calendar days (Civil Code art. 200), from the day after the event (art. 201), to 24:00 of its
    last day; a period whose last day is a statutory day of rest (a weekend that is not a make-up
    working day, or a public holiday) ends on the first working day after it (art. 203).

    legal_period_end(event_date, days): the last day of a period of `days` days that starts with
    the event on `event_date` (a DATE). The business calendar seed knows the working days
    (dbt/seeds/business_calendar.csv, written from the chinese-calendar package); a last day
    beyond the calendar's years is kept as it is. Something due "within N days" of the event is on
    time when it happens on or before this date. -#}
{% macro legal_period_end(event_date, days) -%}
    {{ return(adapter.dispatch('legal_period_end', 'cs_warehouse')(event_date, days)) }}
{%- endmacro %}
{% macro default__legal_period_end(event_date, days) -%}
    coalesce(
        (select bc.period_end_date from {{ ref('business_calendar') }} as bc
         where bc.calendar_date = cast({{ dbt.dateadd('day', days, event_date) }} as date)),
        cast({{ dbt.dateadd('day', days, event_date) }} as date)
    )
{%- endmacro %}
{#- Spark accepts a correlated scalar subquery only as an aggregate; calendar_date is unique
    (a seed test), so max() is the one row's value. -#}
{% macro spark__legal_period_end(event_date, days) -%}
    coalesce(
        (select max(bc.period_end_date) from {{ ref('business_calendar') }} as bc
         where bc.calendar_date = cast({{ dbt.dateadd('day', days, event_date) }} as date)),
        cast({{ dbt.dateadd('day', days, event_date) }} as date)
    )
{%- endmacro %}
