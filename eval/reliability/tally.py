"""What the suite counts: the counters of its last line and one row per check (what was tried, how many times,
how many broke)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

# The last line's counters, in order; every one but `requests` must end at 0.
COUNTERS = ("requests", "server_errors", "hung_streams", "lost_turns", "cross_reads", "unconfirmed_writes")


@dataclass
class Check:
    part: str
    name: str
    tried: int
    broke: int
    note: str = ""
    examples: list[str] = field(default_factory=list)  # what broke, a few of them, for the report


@dataclass
class Tally:
    """Shared by every part (and their threads); `add` and `check` are safe to call from any thread."""

    requests: int = 0
    server_errors: int = 0
    hung_streams: int = 0
    lost_turns: int = 0
    cross_reads: int = 0
    unconfirmed_writes: int = 0
    checks: list[Check] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str, n: int = 1) -> None:
        if counter not in COUNTERS:
            raise ValueError(f"unknown counter {counter!r}")
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def check(
        self, part: str, name: str, tried: int, broke: int, note: str = "", examples: list[str] | None = None
    ) -> Check:
        row = Check(part, name, tried, broke, note, list(examples or [])[:5])
        with self._lock:
            self.checks.append(row)
        return row

    @property
    def broke(self) -> int:
        """Checks that broke plus every counter but `requests`: the suite passes at 0."""
        return sum(c.broke for c in self.checks) + sum(getattr(self, c) for c in COUNTERS[1:])

    def counters(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in COUNTERS}

    def last_line(self) -> str:
        return " ".join(f"{c}={getattr(self, c)}" for c in COUNTERS)

    def to_json(self) -> dict[str, Any]:
        return {"counters": self.counters(), "checks": [asdict(c) for c in self.checks]}
