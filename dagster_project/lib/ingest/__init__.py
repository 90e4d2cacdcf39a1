"""Ingest: one module per landing source, each owning its parsing, contract and quarantine rules
(docs/ingest.md). The registry of the sources is ``dagster_project.lib.ingest.sources``."""


def __getattr__(name: str):
    # ``from dagster_project.lib.ingest import CONTRACTS`` keeps working; the registry is imported on
    # first use, deferred so that importing a small module of the package (the CLI imports guard at
    # start) does not import every source module and DuckDB (0.28 s measured).
    if name in ("CONTRACTS", "SOURCE_MODULES"):
        from dagster_project.lib.ingest import sources  # deferred: see above

        return getattr(sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
