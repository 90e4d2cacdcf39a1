-- The policy book: one row per policy_no, its current version (the latest file wins, then the
-- last line within it), and the first day a file showed it CANCELLED — where its cover, and the
-- premium it earns, stop (the unearned part is refunded, 按日退费).
{{ config(materialized=incremental_materialization(), unique_key='policy_no', incremental_strategy='delete+insert') }}

{{ current_versions(ref('stg_policies__policies'), 'policy_no', carry=[
    "min(case when is_cancelled then cast(_partition as date) end) over (partition by policy_no) as cancelled_date"
]) }}
