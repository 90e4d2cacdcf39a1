{#- A stock reconciles with its flows, per partition and in period order:
    previous closing + inflows - outflows = closing (docs/definitions.md#mart_complaints-open_backlog).
    The first period of each partition opens at 0, so the identity also proves that nothing was in
    stock before the data starts. Returns the rows where the identity fails. -#}
{% test balance_reconciles(model, partition_by, order_by, closing, inflows, outflows) %}
with ordered as (
    select
        {{ partition_by }} as partition_key,
        {{ order_by }} as period,
        {{ closing }} as closing,
        coalesce(lag({{ closing }}) over (partition by {{ partition_by }} order by {{ order_by }}), 0) as opening,
        ({{ inflows }}) as inflows,
        ({{ outflows }}) as outflows
    from {{ model }}
)
select *
from ordered
where opening + inflows - outflows <> closing
{% endtest %}
