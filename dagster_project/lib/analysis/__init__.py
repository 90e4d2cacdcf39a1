"""Analyses that SQL cannot do well, on tables dbt built: the key-driver regressions and the
emerging terms of the customers' comments. Dagster-free engines; each writes one table of the
work file that publish copies (docs/definitions.md#key-drivers, #emerging-terms)."""

from dagster_project.lib.analysis import emerging_terms, key_drivers  # noqa: E402
from dagster_project.lib.analysis.tables import Analysis  # noqa: E402

# Every analysis, in the order they run: the Dagster assets (defs/analysis/) and the benchmark's
# floor both iterate this.
ANALYSES: tuple[Analysis, ...] = (key_drivers.ANALYSIS, emerging_terms.ANALYSIS)
# The published tables they write (required like the dbt marts; their comments are on the work table).
ANALYSIS_TABLES: dict[str, str] = {analysis.table: analysis.description for analysis in ANALYSES}
