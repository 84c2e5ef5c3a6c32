"""The pure core (rules, schemas, state, engine, timefmt) imports no Kafka, RocksDB or web code."""

from __future__ import annotations

import json
import subprocess
import sys

PURE_PACKAGES = (
    "segstream.rules",
    "segstream.schemas",
    "segstream.state",
    "segstream.engine",
    "segstream.timefmt",
)
FORBIDDEN = ("aiokafka", "aiohttp", "rocksdict", "prometheus_client")

# Runs in a fresh interpreter: imports every module of the pure packages that exist and
# reports which forbidden top-level modules ended up loaded.
_PROBE = """
import importlib, importlib.util, json, pkgutil, sys
pure, forbidden = json.loads(sys.argv[1])
imported = []
for name in pure:
    if importlib.util.find_spec(name) is None:
        continue
    module = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(forbidden))
print(json.dumps({"imported": imported, "loaded": loaded}))
"""


def test_pure_packages_import_no_infrastructure() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([PURE_PACKAGES, FORBIDDEN])],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert "segstream.rules.validate" in report["imported"]
    assert "segstream.schemas.events" in report["imported"]
    assert report["loaded"] == []
