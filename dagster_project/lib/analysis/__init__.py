"""Analyses that SQL cannot do well, on tables dbt built: the key-driver regressions and the
emerging terms of the customers' comments. Dagster-free engines; each writes one table of the
work file that publish copies (docs/definitions.md#key-drivers, #emerging-terms)."""
