{#- Counts, durations and amounts are never negative; null is allowed. -#}
{% test not_negative(model, column_name) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} < 0
{% endtest %}
