"""The keyed-record store the shared state is written over: one JSON document per (kind, key)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from assistant.errors import StoreUnavailable

DEFAULT_TIMEOUT_S = 5.0
"""How long one call to the store's server may take before the store reports itself unavailable."""

P = ParamSpec("P")
R = TypeVar("R")

_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Record:
    """One stored document; `key` is unique within `kind`, `owner` and `sort` order the owner's listing."""

    kind: str
    key: str
    doc: dict[str, Any]
    owner: str = ""
    sort: float = 0.0


Change = Callable[[Record | None], Record | None]


class RecordStore(Protocol):
    """Synchronous and safe to share between threads; every write is atomic across processes."""

    def get(self, kind: str, keys: Sequence[str]) -> dict[str, Record]:
        """The stored records among `keys`, by key."""
        ...

    def insert(self, groups: Iterable[Sequence[Record]]) -> int:
        """Store each group whole when none of its records exists yet, else not at all; how many were stored."""
        ...

    def update(self, kind: str, key: str, change: Change) -> Record | None:
        """Store `change(current)` (current: None when absent) in one atomic read-modify-write.

        `change` returning None leaves the record as it is; an exception from it writes nothing.
        It may run more than once (a conflicting write from elsewhere makes it run again).
        Returns the record as stored afterwards.
        """
        ...

    def delete(self, kind: str, key: str) -> bool:
        """Remove the record; False when there was none."""
        ...

    def list(self, kind: str, owner: str, *, newest_first: bool = False, limit: int | None = None) -> list[Record]:
        """The owner's records ordered by (sort, key), ascending or, with `newest_first`, descending."""
        ...

    def keys(self, kind: str) -> set[str]:
        """Every key of `kind`."""
        ...

    def count(self, kind: str) -> int:
        """How many records of `kind` there are."""
        ...

    def ping(self) -> bool:
        """True when the backend answers and is ready for use."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_kind(kind: str) -> str:
    """`kind` when it is a short lowercase name (it becomes part of keys and is never user input)."""
    if not _KIND.match(kind):
        raise ValueError(f"record kind {kind!r}: use lowercase letters, digits and '-'")
    return kind


def check_change(kind: str, key: str, new: Record) -> Record:
    """`new`, when it is the record that `update(kind, key, …)` may store."""
    if (new.kind, new.key) != (kind, key):
        raise ValueError(f"update({kind!r}, {key!r}) returned the record {new.kind!r}/{new.key!r}")
    return new


def unavailable_on(backend: str, *failures: type[BaseException]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A store method whose `failures` (the server is away, or slower than the store's timeout) raise
    StoreUnavailable: a clear 503, not a 500."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except failures as e:
                detail = str(e) or type(e).__name__
                raise StoreUnavailable(f"the order, cart and handoff store ({backend}) is unavailable: {detail}") from e

        return call

    return wrap
