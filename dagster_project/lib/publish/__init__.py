"""Write-audit-publish of the BI file: candidate, audit, atomic replace, versions and rollback."""
