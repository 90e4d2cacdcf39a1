{#
  Every raw row with version_rank = 1 for the version of its key that wins: a later landing file
  (partition) beats an earlier one, then a later line within the file. `newest_first` puts a
  business timestamp ahead of the file order. Staging models keep `where version_rank = 1`.
  (Complaint tickets are not ranked here: ingest keeps their latest state in raw.complaints.)
#}
{% macro ranked_versions(relation, key, newest_first=none) %}
    select
        *,
        row_number() over (
            partition by {{ key }}
            order by {% if newest_first %}{{ newest_first }} desc, {% endif %}_partition desc, _source_line desc
        ) as version_rank
    from {{ relation }}
{% endmacro %}

{#
  One row per key: the version that wins (ranked_versions' rule), from a staging view that holds
  every landed version. `carry` adds window expressions evaluated over all versions of the key
  (e.g. the first day a policy was seen cancelled).

  Materialized incrementally (delete+insert on the key): an incremental build recomputes only the
  keys with a version ingested after the newest `_ingested_at` already in the table, from all
  their versions, so a late re-send of an older day cannot beat a newer version. "After", not "at
  or after": a whole backlog is stamped with one ingest time, and ingest stamps rows when it
  starts while a build runs only after it committed, so a later ingest always carries a later
  second than anything a build has seen. The filter sits on the raw rows, below the ranking,
  so DuckDB reads only those keys' rows. A key that a re-sent day no longer holds would linger;
  ingest records every replaced partition and the pipeline then builds with --full-refresh
  (dagster_project/transform/assets.py).
#}
{% macro current_versions(relation, key, carry=[]) %}
    {{ return(adapter.dispatch('current_versions', 'cs_warehouse')(relation, key, carry)) }}
{% endmacro %}

{% macro duckdb__current_versions(relation, key, carry=[]) %}
    select * exclude (version_rank)
    from (
        select
            *,
            {%- for expression in carry %}
            {{ expression }},
            {%- endfor %}
            row_number() over (
                partition by {{ key }} order by _partition desc, _source_line desc
            ) as version_rank
        from {{ relation }}
        {%- if is_incremental() %}
        where {{ key }} in (
            select {{ key }} from {{ relation }} where _ingested_at > {{ incremental_watermark('_ingested_at') }}
        )
        {%- endif %}
    ) as versions
    where version_rank = 1
{% endmacro %}

{#- Spark has no `* exclude`: the winning (key, _partition, _source_line) of each key is ranked
    apart and joined back to every version (with the carried window expressions), so the result
    has exactly the relation's columns and the carried ones, like DuckDB's. A landing file is one
    partition and a line is one row of it, so (key, _partition, _source_line) names one version. -#}
{% macro spark__current_versions(relation, key, carry=[]) %}
    with versions as (
        select
            *
            {%- for expression in carry %},
            {{ expression }}
            {%- endfor %}
        from {{ relation }}
        {%- if is_incremental() %}
        where {{ key }} in (
            select {{ key }} from {{ relation }} where _ingested_at > {{ incremental_watermark('_ingested_at') }}
        )
        {%- endif %}
    ),
    winners as (
        select {{ key }} as winner_key, _partition as winner_partition, _source_line as winner_line
        from (
            select
                {{ key }}, _partition, _source_line,
                row_number() over (
                    partition by {{ key }} order by _partition desc, _source_line desc
                ) as version_rank
            from versions
        ) as ranked
        where version_rank = 1
    )
    select versions.*
    from versions
    inner join winners
        on versions.{{ key }} = winners.winner_key
        and versions._partition = winners.winner_partition
        and versions._source_line = winners.winner_line
{% endmacro %}

{#- How the models that keep one current row per key are materialized (docs/spark.md#incremental-models):
    incremental (delete+insert on the key) on DuckDB; on Spark a table rebuilt on every build, since
    dbt-spark has no delete+insert and Parquet tables offer only insert_overwrite of partitions,
    which these keys do not map to. A full rebuild is what an incremental build must equal. -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'cs_warehouse')()) }}
{%- endmacro %}
{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}
{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#
  Incremental builds of models downstream of the current-version tables. The watermark is the
  newest ingest time behind any row of the model's table ({{ this }}, column `_source_ingested_at`);
  `changed_since_watermark` selects the keys of an input with a row ingested after it (strictly:
  see current_versions). Only meaningful inside `{% if is_incremental() %}`.
#}
{% macro incremental_watermark(column='_source_ingested_at') -%}
    (select coalesce(max({{ column }}), {{ timestamp_before_all() }}) from {{ this }})
{%- endmacro %}

{#- A timestamp before every ingest time. -#}
{% macro timestamp_before_all() -%}
    {{ return(adapter.dispatch('timestamp_before_all', 'cs_warehouse')()) }}
{%- endmacro %}
{% macro duckdb__timestamp_before_all() -%}
    '-infinity'::timestamp
{%- endmacro %}
{% macro spark__timestamp_before_all() -%}
    cast('0001-01-01 00:00:00' as timestamp)
{%- endmacro %}

{% macro changed_since_watermark(relation, key, ingested_column='_ingested_at') -%}
    select {{ key }} from {{ relation }} where {{ ingested_column }} > {{ incremental_watermark() }}
{%- endmacro %}

{#
  The rows of `relation` an incremental build recomputes: those whose `key` is in the CTE
  `touched` (the model's own list of changed keys); every row on a full build.
#}
{% macro touched_rows(relation, key, touched) -%}
    select * from {{ relation }}
    {%- if is_incremental() %}
    where {{ key }} in (select {{ key }} from {{ touched }})
    {%- endif %}
{%- endmacro %}
