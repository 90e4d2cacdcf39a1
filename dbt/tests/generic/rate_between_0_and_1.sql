{#- A rate or share must lie in [0, 1]; null is allowed (empty denominator). -#}
{% test rate_between_0_and_1(model, column_name) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} is not null
  and ({{ column_name }} < 0 or {{ column_name }} > 1 or isnan({{ column_name }}))
{% endtest %}
