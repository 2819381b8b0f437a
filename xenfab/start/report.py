"""What a start run did: one GuestResult per guest, and the StartReport the task prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tabulate import tabulate

from ..duplicates import Duplicate
from ..textsafe import format_duration

# Every outcome a guest can end a run with, and those that make the run not ok (outcome.py).
from .outcome import BAD_OUTCOMES, OUTCOMES, Outcome

__all__ = ["BAD_OUTCOMES", "OUTCOMES", "GuestResult", "Outcome", "StartReport", "format_duration"]


@dataclass
class GuestResult:
    """How one guest ended: where it runs (or was last tried), the outcome, and how long it took."""

    guest: str
    host: str | None
    outcome: Outcome | str
    seconds: float = 0.0
    message: str = ""
    attempts: int = 0
    planned_host: str | None = None
    tier: int | None = None
    hosts_tried: list[str] = field(default_factory=list)
    # Skipped at the step prompt: down because the operator said so (not in the JSON report).
    declined: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        data["outcome"] = str(self.outcome)  # the plain word, whatever the enum's repr
        del data["declined"]
        return data


@dataclass
class StartReport:
    """The outcome of one start run; ``ok`` is False when anything failed or was left undone."""

    results: list[GuestResult] = field(default_factory=list)
    interrupted: bool = False
    # The operator quit at a step prompt: nothing more was started.
    quit: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    environment: str = ""
    # Why the run started nothing although guests were due (e.g. a host's liveness unknown).
    refused: str | None = None
    # The largest gap between the start of the domain-list round that cleared a start and its
    # command leaving (seconds); None when nothing was sent.
    max_liveness_age_s: float | None = None
    # Guests the run's last round of domain lists showed on two or more hosts (a hand start
    # that raced a start of ours, or one that was there already); None: no last round read.
    duplicates: list[Duplicate] | None = None

    @property
    def ok(self) -> bool:
        """True when no guest failed or was left not started (a dry run is ok)."""
        if self.interrupted or self.refused or self.duplicates:
            return False
        if self.dry_run:
            return True
        return not any(r.outcome in BAD_OUTCOMES for r in self.results)

    def counts(self) -> dict[str, int]:
        """How many guests ended with each outcome (every outcome listed, zeros included)."""
        counts = {o.value: 0 for o in OUTCOMES}
        for r in self.results:
            counts[str(r.outcome)] = counts.get(str(r.outcome), 0) + 1
        return counts

    def result(self, guest: str) -> GuestResult | None:
        """The result of ``guest``, or None."""
        return next((r for r in self.results if r.guest == guest), None)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {
            "environment": self.environment,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "refused": self.refused,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 2),
            "max_liveness_age_s": (
                round(self.max_liveness_age_s, 3) if self.max_liveness_age_s is not None else None
            ),
            "counts": self.counts(),
            "warnings": list(self.warnings),
            "duplicates": [asdict(d) for d in self.duplicates or []],
            "duplicates_checked": self.duplicates is not None,
            "results": [r.to_dict() for r in self.results],
        }

    def table(self) -> str:
        """A plain-text table (one row per guest) followed by a one-line summary."""
        rows = [
            (
                r.guest,
                r.host or "-",
                str(r.outcome),
                f"{r.seconds:.1f}s" if r.seconds else "-",
                r.attempts or "-",
                r.message,
            )
            for r in self.results
        ]
        headers = ("guest", "host", "outcome", "time", "tries", "message")
        text = tabulate(rows, headers=headers, tablefmt="simple") if rows else "(no guests)"
        return text + "\n" + self.summary()

    def summary(self) -> str:
        """One line: counts per outcome, total time, and whether the run was interrupted."""
        counts = self.counts()
        parts = [f"{n} {outcome}" for outcome, n in counts.items() if n]
        head = "dry run: " if self.dry_run else ""
        tail = "; interrupted" if self.interrupted else ""
        body = ", ".join(parts) or "nothing to start"
        fresh = ""
        if self.max_liveness_age_s is not None:
            # How old, at most, the domain lists were that let a start go (round begun -> sent).
            fresh = f"; domain lists at most {self.max_liveness_age_s:.2f}s old at each start"
        return f"{head}{body} in {format_duration(self.seconds)}{fresh}{tail}"
