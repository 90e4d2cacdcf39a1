-- Claim events: one row per event_id, its current version (a re-sent event in a later file
-- replaces the earlier one).
{{ config(materialized=incremental_materialization(), unique_key='event_id', incremental_strategy='delete+insert') }}

{{ current_versions(ref('stg_claim_events__events'), 'event_id') }}
