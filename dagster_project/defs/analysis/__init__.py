"""Dagster side of the analyses: the key-driver and emerging-term marts."""
