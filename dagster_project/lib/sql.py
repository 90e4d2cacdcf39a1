"""SQL text the engines build themselves: DuckDB takes no parameters in DDL such as ``COMMENT ON``
or in the statements dbt's compiled SQL is wrapped in, so those values are written as literals."""


def sql_literal(value: object) -> str:
    """A SQL literal for a str / number / bool / None (names, comments and contract values; never
    a customer's data)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """A quoted SQL identifier (a table or column name)."""
    return '"' + name.replace('"', '""') + '"'
