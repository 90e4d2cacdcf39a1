"""The landing sources, in the data's order: one module per source, each owning its contract,
parsing and quarantine rules (docs/ingest.md)."""

from dagster_project.lib.ingest import audits, call_logs, claim_events, complaints, policies, surveys
from dagster_project.lib.ingest.contract import register_contracts

SOURCE_MODULES = (policies, claim_events, call_logs, surveys, complaints, audits)
CONTRACTS = {m.CONTRACT.source: m.CONTRACT for m in SOURCE_MODULES}
register_contracts(CONTRACTS)
