{#- PII handling. Customer ids never leave staging in clear: the key is sha256(salt || '|' || id)
    as lowercase hex. The salt comes from CSWH_PII_SALT through the connection, never through SQL
    text (see profiles.yml): on DuckDB a session variable read with getvariable(), on Spark a
    session conf read with ${...} substitution (docs/spark.md#the-pii-salt). Without it the query
    fails instead of producing unsalted or null keys. -#}
{% macro customer_key(expr) -%}
    {{ return(adapter.dispatch('customer_key', 'cs_warehouse')(expr)) }}
{%- endmacro %}
{% macro duckdb__customer_key(expr) -%}
    sha256(
        coalesce(getvariable('cswh_pii_salt'), error('CSWH_PII_SALT is not set for this DuckDB session'))
        || '|' || ({{ expr }})
    )
{%- endmacro %}
{#- Spark substitutes ${conf} when it parses the statement, so the SQL that dbt compiles and logs
    holds only the placeholder; the statement Spark runs holds the (hex-encoded) salt, which is why
    the models that call this are tables on Spark (pii_materialization): a view would store that
    text in the metastore. An unset conf is left as the literal placeholder, which starts with '$'. -#}
{% macro spark__customer_key(expr) -%}
    case
        when substr('${spark.cswh.pii_salt_hex}', 1, 2) = '$' || '{'
        then raise_error('CSWH_PII_SALT is not set for this Spark session (spark.cswh.pii_salt_hex)')
        else sha2(decode(unhex('${spark.cswh.pii_salt_hex}'), 'UTF-8') || '|' || ({{ expr }}), 256)
    end
{%- endmacro %}

{#- How a model that computes customer_key is materialized: a view on DuckDB (the salt stays in
    the session variable), a table on Spark (a stored view would hold the substituted salt). -#}
{% macro pii_materialization() -%}
    {{ return(adapter.dispatch('pii_materialization', 'cs_warehouse')()) }}
{%- endmacro %}
{% macro default__pii_materialization() -%}
    {{ return('view') }}
{%- endmacro %}
{% macro spark__pii_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- Remove mainland resident ID numbers (17 digits + digit/X) and mobile numbers (1[3-9] + 9
    digits) from free text. ID numbers first, because an ID number contains digit runs that look
    like a phone number. No digit boundaries: over-scrubbing a longer digit run is the safe side. -#}
{% macro scrub_pii(expr) -%}
    {{ return(adapter.dispatch('scrub_pii', 'cs_warehouse')(expr)) }}
{%- endmacro %}
{#- DuckDB replaces the first match unless the 'g' flag is given. -#}
{% macro duckdb__scrub_pii(expr) -%}
    regexp_replace(
        regexp_replace({{ expr }}, '[0-9]{17}[0-9Xx]', '[ID]', 'g'),
        '1[3-9][0-9]{9}', '[PHONE]', 'g')
{%- endmacro %}
{#- Spark always replaces every match and takes no flags: a fourth argument is a start position,
    and 'g' there makes every result NULL. -#}
{% macro spark__scrub_pii(expr) -%}
    regexp_replace(
        regexp_replace({{ expr }}, '[0-9]{17}[0-9Xx]', '[ID]'),
        '1[3-9][0-9]{9}', '[PHONE]')
{%- endmacro %}
