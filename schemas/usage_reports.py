"""The usage and cost report of ``GET /v1/usage`` (docs/spend.md, "Usage and cost reports")."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The figures every row and the totals carry, in the order CSV columns show them.
FIGURES = (
    "jobs",
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cache_hits",
    "cache_savings_usd",
)
# The dimensions a report groups by; ``metadata.<key>`` names a key of the jobs' metadata.
DIMENSIONS = ("day", "hour", "tier", "model", "provider", "api_key", "priority", "batch")
METADATA_PREFIX = "metadata."


class UsageFigures(BaseModel):
    """What was used: jobs that ended, provider calls, tokens, cost, and what the cache saved."""

    model_config = ConfigDict(extra="forbid")

    jobs: int = Field(0, description="Jobs that ended (succeeded or failed) in the range.")
    calls: int = Field(0, description="Provider calls, retries and failed calls included.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = Field(0.0, description="What the provider calls cost.")
    cache_hits: int = Field(0, description="Jobs a cache answered with no call.")
    cache_savings_usd: float = Field(0.0, description="What the calls those hits replaced cost.")


class UsageReport(BaseModel):
    """Figures over ``[from, to)``, one row per group, and their totals."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="Start, inclusive (UTC).")
    to: datetime = Field(description="End, exclusive (UTC).")
    group_by: list[str]
    rows: list[dict[str, Any]] = Field(
        description="Per group: its dimensions' values (``day``: YYYY-MM-DD, ``hour``: ISO UTC) "
        "and the figures of UsageFigures."
    )
    totals: UsageFigures
    source: Literal["rollup", "raw"] = Field(
        description="rollup: the hourly rollups answered; raw: the usage rows and jobs did."
    )

    def to_csv(self) -> str:
        """A header row, then one line per group: its dimensions, then the figures."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*self.group_by, *FIGURES])
        for row in self.rows:
            writer.writerow([_cell(row.get(name)) for name in (*self.group_by, *FIGURES)])
        return out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value
