"""Great Expectations suites validated inside DuckDB, and the validation summary page."""
