"""The monthly KPI snapshot: history rows, HTML report, CSV export and e-mail."""
