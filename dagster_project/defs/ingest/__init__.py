"""Dagster side of ingest: one asset per landing source and the landing sensor."""
