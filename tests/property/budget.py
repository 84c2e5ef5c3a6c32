"""How many examples each property test runs: few by default, many with HYPOTHESIS_PROFILE=long."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG_RUN = os.environ.get("HYPOTHESIS_PROFILE") == "long"
LONG_FACTOR = 25

settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def examples(count: int) -> settings:
    """Settings for a test that runs `count` examples by default (x25 in a long run)."""
    return settings(
        max_examples=count * LONG_FACTOR if LONG_RUN else count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
