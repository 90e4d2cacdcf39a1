-- Survey responses: one row per response_id, its current version.
{{ config(materialized=incremental_materialization(), unique_key='response_id', incremental_strategy='delete+insert') }}

{{ current_versions(ref('stg_surveys__responses'), 'response_id') }}
