"""dbt from plain Python: build, parse, docs, incremental-vs-full decisions, the dbt launcher."""
