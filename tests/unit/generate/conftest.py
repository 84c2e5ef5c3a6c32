"""Small generated workloads shared by the generator tests (module-scoped: generation is cheap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from segstream.generate import Workload, generate_workload, write_workload


@pytest.fixture(scope="module")
def small_workload() -> Workload:
    """400 profiles, 6,000 records, 60 definitions, seed 7."""
    return generate_workload(profiles=400, events=6000, segments=60, seed=7)


@pytest.fixture(scope="module")
def small_records(small_workload: Workload) -> list[dict[str, Any]]:
    """The records of `small_workload`, as written (parsed back from their JSON bytes)."""
    return [orjson.loads(orjson.dumps(record)) for record in small_workload.records()]


@pytest.fixture(scope="module")
def written_files(small_workload: Workload, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`small_workload` written as replay files; returns the directory."""
    out = tmp_path_factory.mktemp("workload")
    write_workload(small_workload, out)
    return out
