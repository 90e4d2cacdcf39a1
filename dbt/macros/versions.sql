{#
  Every raw row with version_rank = 1 for the version of its key that wins: a later landing file
  (partition) beats an earlier one, then a later line within the file. `newest_first` puts a
  business timestamp ahead of the file order (complaint tickets: the latest updated_ts wins, so a
  late-arriving older state never does). Staging models keep `where version_rank = 1`.
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
