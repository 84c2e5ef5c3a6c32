"""The rule language: validation of segment definitions, fingerprints and condition facts.

Pure: imports no Kafka, Faust, RocksDB or Prometheus code. The engine compiles conditions
that `validate_definition` accepted (`segstream.rules.compile`, the engine's module).
"""

from segstream.rules.analyze import ConditionFacts, analyze_condition, transitively_time_dependent
from segstream.rules.fingerprint import condition_fingerprint
from segstream.rules.validate import validate_definition

__all__ = [
    "ConditionFacts",
    "analyze_condition",
    "condition_fingerprint",
    "transitively_time_dependent",
    "validate_definition",
]
