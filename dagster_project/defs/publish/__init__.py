"""Dagster side of publish: the published-marts asset."""
