{#- Use the custom schema name as-is (staging, intermediate, marts, reference), not
    <target_schema>_<custom>: BI users and the publish step address marts.<model>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
