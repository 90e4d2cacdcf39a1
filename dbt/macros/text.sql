{#- Reading free text on every engine: substring counts with dbt's cross-database macros (no
    regular expressions, no segmentation). docs/definitions.md#verbatim-topics. -#}

{#- How many times `term` occurs in `text` (non-overlapping), as an integer: the length the text
    loses when every occurrence is removed, divided by the term's length. -#}
{% macro occurrences(text, term) -%}
    cast(
        ({{ dbt.length(text) }} - {{ dbt.length(dbt.replace(text, term, "''")) }})
        / {{ dbt.length(term) }}
    as integer)
{%- endmacro %}

{#- `text` contains `term`. -#}
{% macro contains_text(text, term) -%}
    ({{ dbt.position(term, text) }} > 0)
{%- endmacro %}
