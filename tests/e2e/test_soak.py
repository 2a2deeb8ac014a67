"""A short soak on the real stack (bench/soak.py): a minute of mixed traffic from several users
and a few abusive clients, then every invariant checked. The 30-minute run is made by hand."""

from __future__ import annotations

import pytest

from bench.soak import soak

pytestmark = pytest.mark.e2e


def test_a_minute_of_mixed_and_abusive_traffic_loses_nothing_and_leaks_nothing() -> None:
    result = soak(minutes=1, users=4, abusers=1, seed=7)

    print(result)
    assert result["answers"] >= 4, result  # the traffic really ran
    assert result["problems"] == [], result["problems"]
