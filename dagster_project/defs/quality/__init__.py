"""Dagster side of the quality gates: Great Expectations suites as blocking asset checks."""
