{#- The working-hour clock of follow-up deadlines (docs/definitions.md#followup-clocks).

    A working day runs from business_hours.open to business_hours.close (var, local time) on the
    days the business calendar seed marks as working (make-up working days included, public
    holidays and ordinary weekends not); int_calendar__working_hours numbers those days. A moment's
    position on the clock is the working hours before it since the calendar's first day: the
    working days before its date times the hours of a working day, plus the hours of its own
    working day already passed (none before the opening, all after the closing, none on a rest day).

    Calls take the calendar row of the moment's date as `cal` (a joined int_calendar__working_hours
    row); a position is turned back into a moment by joining the calendar on
    working_day_seq = working_day_of_position(pos). -#}

{% macro business_day_hours() -%}
    {%- set hours = var('business_hours') -%}
    {{- hours['close'] - hours['open'] -}}
{%- endmacro %}

{#- Hours of its day already passed at `ts` (0 to 24, fractional). -#}
{% macro hours_into_day(ts) -%}
    {{ duration_hours('cast(cast(' ~ ts ~ ' as date) as timestamp)', ts) }}
{%- endmacro %}

{#- The position of `ts` (hours) given `cal`, the calendar row of its date; null outside the calendar. -#}
{% macro working_hours_position(ts, cal) -%}
    ({{ cal }}.working_days_before * {{ business_day_hours() }}
     + case when {{ cal }}.is_working_day
            then least(greatest({{ hours_into_day(ts) }} - {{ var('business_hours')['open'] }}, 0), {{ business_day_hours() }})
            else 0 end)
{%- endmacro %}

{#- The number of the working day on which position `pos` falls: a position exactly at a closing
    time belongs to that day, not the next one. -#}
{% macro working_day_of_position(pos) -%}
    cast(ceil(({{ pos }}) / {{ business_day_hours() }}) as bigint)
{%- endmacro %}

{#- The moment at position `pos`, given `cal`, the calendar row joined on working_day_of_position(pos). -#}
{% macro working_hours_moment(pos, cal) -%}
    {%- set seconds = 'cast(round((' ~ var('business_hours')['open'] ~ ' + (' ~ pos ~ ') - (' ~ cal
        ~ '.working_day_seq - 1) * ' ~ business_day_hours() ~ ') * 3600) as bigint)' -%}
    {{ dbt.dateadd('second', seconds, 'cast(' ~ cal ~ '.calendar_date as timestamp)') }}
{%- endmacro %}

{#- `ts` plus `hours` calendar hours (fractional hours rounded to the second). -#}
{% macro add_hours(ts, hours) -%}
    {{ dbt.dateadd('second', 'cast(round((' ~ hours ~ ') * 3600) as bigint)', ts) }}
{%- endmacro %}
