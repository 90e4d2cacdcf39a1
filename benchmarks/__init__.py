"""The scale benchmark against its DuckDB-only floor."""
