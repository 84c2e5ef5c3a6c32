"""Realistic, deterministic workloads (profiles, activity, segment definitions) for replay."""

from segstream.generate.filters import time_independent
from segstream.generate.workload import (
    DEFAULT_END,
    Workload,
    WorkloadSummary,
    generate_workload,
    write_workload,
)

__all__ = [
    "DEFAULT_END",
    "Workload",
    "WorkloadSummary",
    "generate_workload",
    "time_independent",
    "write_workload",
]
