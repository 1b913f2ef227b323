"""MicroBatcher: concurrent callers share batches; each gets its own result or the batch's error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from retrieval.batching import MicroBatcher


def slow_double(items: list[int]) -> list[int]:
    time.sleep(0.05)  # long enough for the other callers to queue behind the first batch
    return [2 * i for i in items]


def test_a_lone_caller_runs_at_once_in_a_batch_of_one() -> None:
    b = MicroBatcher(slow_double)
    assert b(21) == 42
    assert (b.batches, b.items) == (1, 1)


def gated(waiting: int) -> MicroBatcher[int, int]:
    """A batcher whose first batch runs until `waiting` more callers have queued behind it (not a timed guess)."""
    b: MicroBatcher[int, int]

    def double(items: list[int]) -> list[int]:
        if b.batches == 0:
            deadline = time.monotonic() + 10
            while len(b._pending) < waiting and time.monotonic() < deadline:
                time.sleep(0.001)
        return [2 * i for i in items]

    b = MicroBatcher(double, max_batch=16)
    return b


def run_eight(b: MicroBatcher[int, int]) -> list[int]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(b, 0)
        while not b._running:  # the first batch is running
            time.sleep(0.001)
        rest = [pool.submit(b, i) for i in range(1, 8)]
        return [first.result(), *(f.result() for f in rest)]


def test_callers_arriving_while_a_batch_runs_share_the_next_one() -> None:
    b = gated(7)
    assert run_eight(b) == [2 * i for i in range(8)]
    assert b.items == 8 and b.batches == 2  # [0], then the seven that queued meanwhile


def test_max_batch_splits_a_long_queue() -> None:
    b = gated(7)
    b.max_batch = 3
    assert run_eight(b) == [2 * i for i in range(8)]
    assert b.items == 8 and b.batches == 4  # [0], then 7 queued in batches of at most 3


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_goes_on() -> None:
    def flaky(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item -1")
        return slow_double(items)

    b = MicroBatcher(flaky)
    with pytest.raises(ValueError, match="bad item -1"):
        b(-1)
    assert b(3) == 6


def test_a_wrong_number_of_results_is_an_error() -> None:
    b: MicroBatcher[int, int] = MicroBatcher(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        b(1)


def test_with_parallel_two_a_second_batch_runs_beside_the_first() -> None:
    """Both batches wait at a barrier for two parties: they finish only if they run at the same time."""
    barrier = threading.Barrier(2, timeout=5)

    def meet(items: list[int]) -> list[int]:
        barrier.wait()
        return [2 * i for i in items]

    b = MicroBatcher(meet, parallel=2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(b, 1)
        while not b._running:
            time.sleep(0.001)
        second = pool.submit(b, 2)
        assert (first.result(), second.result()) == (2, 4)
    assert (b.batches, b.items) == (2, 2)
    with pytest.raises(ValueError, match="parallel must be at least 1"):
        MicroBatcher(meet, parallel=0)


def test_with_parallel_two_each_item_runs_once_and_gets_its_own_result() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(items: list[int]) -> list[int]:
        time.sleep(0.002)
        with lock:
            seen.extend(items)
        return [2 * i for i in items]

    b = MicroBatcher(record, max_batch=3, parallel=2)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(b, range(64)))
    assert results == [2 * i for i in range(64)]
    assert sorted(seen) == list(range(64)) and b.items == 64
