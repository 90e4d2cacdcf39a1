{#- The call-centre measures, shared by the daily (day x queue) and monthly (branch x month)
    marts so that both use one definition (docs/definitions.md#call-centre):
    - offered: inbound calls requesting an agent (abandons, timeouts and overflow included);
    - manual answer rate (电话呼入人工接通率) = answered / offered;
    - service level (N秒人工接通率) = answered within N seconds / offered, N = var service_level_seconds;
    - abandon rate = abandoned / offered;
    - ASA = mean queue wait of answered inbound calls; AHT = mean talk + wrap-up of answered inbound calls;
    - inbound share = inbound / all calls; follow-up (回访) reach rate = reached / follow-up calls
      (reached: connected, a refusal 拒访 included); completion rate = completed / follow-up calls
      (completed: connected and not refused). -#}
{% macro call_center_measures(calls) -%}
        count(case when {{ calls }}.direction = 'INBOUND' then 1 end) as offered,
        count(case when {{ calls }}.direction = 'INBOUND' and {{ calls }}.is_answered then 1 end) as answered,
        count(case when {{ calls }}.direction = 'INBOUND' and {{ calls }}.is_abandoned then 1 end) as abandoned,
        count(case when {{ calls }}.direction = 'INBOUND' and {{ calls }}.is_answered
                    and {{ calls }}.wait_seconds <= {{ var('service_level_seconds') }} then 1 end) as answered_within_20s,
        avg(case when {{ calls }}.direction = 'INBOUND' and {{ calls }}.is_answered then {{ calls }}.wait_seconds end) as asa_seconds,
        avg(case when {{ calls }}.direction = 'INBOUND' and {{ calls }}.is_answered then {{ calls }}.handle_seconds end) as aht_seconds,
        count(case when {{ calls }}.direction = 'OUTBOUND' then 1 end) as outbound_calls,
        count(case when {{ calls }}.call_type = 'FOLLOW_UP' then 1 end) as followup_calls,
        count(case when {{ calls }}.call_type = 'FOLLOW_UP' and {{ calls }}.is_reached then 1 end) as followups_reached,
        count(case when {{ calls }}.call_type = 'FOLLOW_UP' and {{ calls }}.is_completed then 1 end) as followups_completed
{%- endmacro %}

{#- The rates over call_center_measures' counts (null when the denominator is 0). `closed_claims`
    is the caller's expression for the claims closed in the row's period (null where the row's grain
    does not own them). -#}
{% macro call_center_rates(m, closed_claims) -%}
    coalesce({{ m }}.offered, 0) as offered,
    coalesce({{ m }}.answered, 0) as answered,
    coalesce({{ m }}.abandoned, 0) as abandoned,
    coalesce({{ m }}.answered_within_20s, 0) as answered_within_20s,
    {{ safe_ratio(m ~ '.answered', m ~ '.offered') }} as manual_answer_rate,
    {{ safe_ratio(m ~ '.answered_within_20s', m ~ '.offered') }} as service_level_20s,
    {{ safe_ratio(m ~ '.abandoned', m ~ '.offered') }} as abandon_rate,
    cast({{ m }}.asa_seconds as double) as asa_seconds,
    cast({{ m }}.aht_seconds as double) as aht_seconds,
    coalesce({{ m }}.outbound_calls, 0) as outbound_calls,
    {{ safe_ratio(m ~ '.offered', m ~ '.offered + ' ~ m ~ '.outbound_calls') }} as inbound_share,
    coalesce({{ m }}.followup_calls, 0) as followup_calls,
    coalesce({{ m }}.followups_reached, 0) as followups_reached,
    {{ safe_ratio(m ~ '.followups_reached', m ~ '.followup_calls') }} as followup_reach_rate,
    coalesce({{ m }}.followups_completed, 0) as followups_completed,
    {{ safe_ratio(m ~ '.followups_completed', m ~ '.followup_calls') }} as followup_completion_rate,
    {{ closed_claims }} as closed_claims,
    {{ safe_ratio('coalesce(' ~ m ~ '.followup_calls, 0)', closed_claims) }} as followups_per_closed_claim
{%- endmacro %}
