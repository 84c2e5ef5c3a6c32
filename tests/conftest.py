"""Root test configuration: the Kafka broker fixture and the `kafka` marker's rules."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["kafka_broker", "secured_broker"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker `kafka`; skip them all when asked to."""
    skip_kafka = os.environ.get("SEGSTREAM_SKIP_KAFKA", "") not in ("", "0")
    for item in items:
        # A test that takes the broker is a Kafka test even if its author forgot the marker,
        # so `-m "not kafka"` never starts a broker.
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
        if skip_kafka and item.get_closest_marker("kafka") is not None:
            item.add_marker(pytest.mark.skip(reason="SEGSTREAM_SKIP_KAFKA is set"))
