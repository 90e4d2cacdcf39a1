"""The scale benchmark against its DuckDB-only floor (DESIGN §10, issue 8)."""
