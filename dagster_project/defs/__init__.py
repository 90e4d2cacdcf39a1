"""Dagster objects only: assets, asset checks, jobs, schedules, sensors and resources, one
sub-package per stage of the data's path (ingest -> transform -> quality -> publish -> report). They
call the Dagster-free engines in ``dagster_project.lib``; ``dagster_project.definitions`` assembles
them."""
