"""Dagster side of reporting: the monthly KPI snapshot asset and the schedules."""
