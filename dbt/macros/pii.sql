{#- PII handling. Customer ids never leave staging in clear: the key is sha256(salt || '|' || id)
    as lowercase hex. The salt comes from CSWH_PII_SALT through the DuckDB session variable
    cswh_pii_salt (see profiles.yml), so it is never written into SQL text; without it the query
    fails instead of producing unsalted or null keys. -#}
{% macro customer_key(expr) -%}
    sha256(
        coalesce(getvariable('cswh_pii_salt'), error('CSWH_PII_SALT is not set for this DuckDB session'))
        || '|' || ({{ expr }})
    )
{%- endmacro %}

{#- Remove mainland resident ID numbers (17 digits + digit/X) and mobile numbers (1[3-9] + 9
    digits) from free text. ID numbers first, because an ID number contains digit runs that look
    like a phone number. No digit boundaries: over-scrubbing a longer digit run is the safe side. -#}
{% macro scrub_pii(expr) -%}
    regexp_replace(
        regexp_replace({{ expr }}, '[0-9]{17}[0-9Xx]', '[ID]', 'g'),
        '1[3-9][0-9]{9}', '[PHONE]', 'g')
{%- endmacro %}
