{#- Every row satisfies a SQL boolean expression (e.g. 'valid <= accepted'). Usable on a model or
    on a column (the column name is then only the test's label). -#}
{% test expression_true(model, expression, column_name=None) %}
select * from {{ model }} where not coalesce(({{ expression }}), false)
{% endtest %}
