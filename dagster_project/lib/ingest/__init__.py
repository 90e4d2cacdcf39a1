"""Ingest: one module per landing source, each owning its parsing, contract and quarantine rules.
The registry of sources is ``dagster_project.lib.ingest.sources``."""

from dagster_project.lib.ingest.sources import CONTRACTS, SOURCE_MODULES  # noqa: F401  (kept for callers)
