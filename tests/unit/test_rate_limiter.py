from assistant.api.limits import REFILL_S, RateLimiter


def test_a_burst_waits_and_refills():
    limiter = RateLimiter(per_minute=2)
    assert limiter.check("a", now=1000.0) == 0.0
    assert limiter.check("a", now=1000.0) == 0.0
    assert limiter.check("a", now=1000.0) > 0.0
    assert limiter.check("b", now=1000.0) == 0.0  # another key is not starved
    assert limiter.check("a", now=1000.0 + REFILL_S) == 0.0


def test_idle_keys_are_forgotten_without_changing_any_answer():
    limiter = RateLimiter(per_minute=3)
    for i in range(1000):
        limiter.check(f"visitor-{i}", now=1000.0)
    assert len(limiter) == 1000
    limiter.check("busy", now=1000.0 + REFILL_S / 2)
    limiter.check("busy", now=1000.0 + REFILL_S / 2)
    limiter.check("busy", now=1000.0 + REFILL_S + 1)  # a sweep: the visitors have refilled, "busy" has not
    assert len(limiter) == 1
    # "busy" kept its partly used bucket: 1 left at 1030 s, +1.55 refilled by 1061 s, 1 taken: one more, then a wait
    assert limiter.check("busy", now=1000.0 + REFILL_S + 1) == 0.0
    assert limiter.check("busy", now=1000.0 + REFILL_S + 1) > 0.0
    assert limiter.check("visitor-1", now=1000.0 + REFILL_S + 1) == 0.0  # a forgotten key starts full
