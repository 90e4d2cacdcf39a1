"""The engines, free of Dagster: ingest (parse, validate, load), transform (dbt), quality (Great
Expectations in DuckDB), publish (write-audit-publish) and report (snapshot, HTML, e-mail). Each can
be called and tested without an orchestrator; ``dagster_project.defs`` wraps them."""
