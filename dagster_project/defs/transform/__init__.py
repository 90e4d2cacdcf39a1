"""Dagster side of transform: the dbt project as assets and asset checks."""
