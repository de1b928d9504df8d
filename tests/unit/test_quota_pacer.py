"""The Gmail client's pacer: charged before each call, it keeps a mailbox under its quota."""

from __future__ import annotations

import pytest

from shared.adapters.gmail.api import QUOTA_UNITS, QuotaPacer
from shared.errors import ConfigurationError


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_backfill_is_paced_to_the_configured_units_per_second() -> None:
    time = FakeTime()
    pacer = QuotaPacer(240.0, burst_units=50.0, clock=time.clock, sleep=time.sleep)
    batch = QUOTA_UNITS["messages.get"] * 10  # one batch of 10 metadata gets: 50 units
    for _ in range(48):  # 2,400 units
        pacer.acquire(batch)
    # The burst is free, the rest comes at 240 units/s: (2400 - 50) / 240 seconds.
    assert time.now == pytest.approx((2400 - 50) / 240)


def test_idle_time_refills_no_more_than_the_burst() -> None:
    time = FakeTime()
    pacer = QuotaPacer(100.0, burst_units=50.0, clock=time.clock, sleep=time.sleep)
    pacer.acquire(50)
    time.now += 60  # a minute idle banks only the burst, never a minute of quota
    assert pacer.acquire(50) == 0
    assert pacer.acquire(50) == pytest.approx(0.5)


def test_a_call_larger_than_the_burst_waits_for_its_units() -> None:
    time = FakeTime()
    pacer = QuotaPacer(100.0, burst_units=50.0, clock=time.clock, sleep=time.sleep)
    assert pacer.acquire(QUOTA_UNITS["watch"]) == pytest.approx(0.5)


def test_the_pace_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        QuotaPacer(0)
