"""The result of validating a suite: its expectations' outcomes and the blocking verdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ExpectationOutcome:
    expectation_type: str
    column: str | None
    severity: str
    why: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    observed_value: Any = None
    sample: list = field(default_factory=list)
    error: str | None = None
    description: str | None = None

    @property
    def label(self) -> str:
        target = self.column or self.description or ""
        return f"{self.expectation_type}({target})" if target else self.expectation_type

    def summary(self) -> str:
        if self.error:
            return f"{self.label} [{self.severity}]: error: {self.error}"
        parts = [f"{self.label} [{self.severity}]"]
        if self.unexpected_count is not None:
            parts.append(f"{self.unexpected_count} unexpected")
        elif self.observed_value is not None:
            parts.append(f"observed {self.observed_value}")
        if self.sample:
            parts.append(f"e.g. {', '.join(str(s) for s in self.sample[:3])}")
        return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


@dataclass
class SuiteResult:
    suite_name: str
    table: str
    layer: str
    asset_key: list[str]
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the suite could not run at all (e.g. the table is missing)

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    @property
    def failed_critical(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def failed_warning(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def success(self) -> bool:
        """Blocking verdict: no error and no failed critical expectation."""
        return self.error is None and not self.failed_critical

    def describe_failures(self) -> str:
        if self.error:
            return f"suite {self.suite_name} on {self.table}: could not run: {self.error}"
        lines = [f"suite {self.suite_name} on {self.table}: {o.summary()}"
                 for o in self.failed_critical + self.failed_warning]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: dict) -> "SuiteResult":
        fields = {k: data[k] for k in ("suite_name", "table", "layer", "asset_key", "seconds", "error")}
        outcomes = [ExpectationOutcome(**{k: v for k, v in o.items() if k != "label"})
                    for o in data.get("outcomes", [])]
        return cls(outcomes=outcomes, **fields)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(evaluated=self.evaluated, success=self.success,
                    failed_critical=len(self.failed_critical), failed_warning=len(self.failed_warning))
        return json.loads(json.dumps(data, default=str))
