-- Calls: one row per call_id, its current version.
{{ config(materialized=incremental_materialization(), unique_key='call_id', incremental_strategy='delete+insert') }}

{{ current_versions(ref('stg_call_logs__calls'), 'call_id') }}
