{#- The raw tables on Spark (docs/spark.md#the-lake): ingest writes each source as Parquet under
    the lake folder (CSWH_LAKE_DIR, a path or URI every Spark executor reads), one folder per raw
    table. A model that reads a source first registers that source's folder in the catalog as the
    external table the source names (a pre-hook of every model, dbt_project.yml): dropping an
    external table keeps its files, and re-creating it reads the folder's current files and schema.
    On DuckDB ingest loads raw.* into the work file itself, and the hook renders nothing. -#}
{% macro register_lake_sources(node) -%}
    {{ return(adapter.dispatch('register_lake_sources', 'cs_warehouse')(node)) }}
{%- endmacro %}

{% macro default__register_lake_sources(node) -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__register_lake_sources(node) -%}
    {%- set lake = env_var('CSWH_LAKE_DIR', '') | trim -%}
    {%- if execute and lake and node and node.sources -%}
        {%- for source_name, table_name in node.sources -%}
            {%- set relation = source(source_name, table_name) -%}
            {%- do run_query('create schema if not exists ' ~ relation.schema) -%}
            {%- do run_query('drop table if exists ' ~ relation) -%}
            {%- do run_query('create table ' ~ relation ~ " using parquet location '"
                             ~ lake.rstrip('/') ~ '/' ~ relation.identifier ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
