"""Micro-batching: calls that arrive together from several threads run as one batch.

Encoding several short texts in one ONNX run costs much less than encoding them one by one. When several chat turns
embed or route their messages at the same moment, the first caller runs at once; the callers that arrive
while it runs queue up, and one of them runs the whole queue as one batch and hands each its own result.
A lone caller pays nothing (unless `max_wait_s` asks it to wait for company). With `parallel` > 1 that many
batches may run at once (each ONNX run on its own thread and core).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("item", "taken", "finished", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.taken = False  # in a batch that a caller runs
        self.finished = False
        self.result: R | None = None
        self.error: BaseException | None = None


class MicroBatcher(Generic[T, R]):
    """`batcher(item)` returns `fn([item, …])[i]` for its own item, sharing `fn` calls with concurrent callers.

    `fn` must return one result per item, in order; at most `parallel` batches run at a time. An exception from
    `fn` is raised in every caller of that batch. A lone caller runs at once; callers that arrive while
    `parallel` batches run form the next batch, which one of them runs; `max_wait_s` > 0 makes that caller
    wait so long for others to join.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 16,
        max_wait_s: float = 0.0,
        parallel: int = 1,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.parallel = parallel
        self._cond = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._running = 0  # batches running now
        self.batches = 0  # how many times fn ran
        self.items = 0  # over how many items

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while (slot.taken or self._running >= self.parallel) and not slot.finished:
                    self._cond.wait()
                if slot.finished:
                    break
                self._running += 1  # this caller runs the next batch
            if self.max_wait_s > 0:
                time.sleep(self.max_wait_s)
            with self._cond:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                for s in batch:
                    s.taken = True
                if not batch:  # another runner took every waiting item meanwhile, this caller's included
                    self._running -= 1
                    self._cond.notify_all()
                    continue
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            results = list(self.fn([s.item for s in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            for s, r in zip(batch, results, strict=True):
                s.result = r
        except BaseException as e:  # every caller of the batch gets the error
            for s in batch:
                s.error = e
        finally:
            with self._cond:
                self.batches += 1
                self.items += len(batch)
                for s in batch:
                    s.finished = True
                self._running -= 1
                self._cond.notify_all()
