"""Member export formats: the traits parameter, trait lookup, RFC 4180 CSV and JSON lines."""

from __future__ import annotations

import csv
import io

import orjson

from segstream.api.export_format import (
    csv_header,
    csv_rows,
    jsonl_rows,
    parse_traits,
    trait_values,
)
from segstream.errors import Problem

AWKWARD = ["a,b", 'say "hi"', "two\nlines", "cr\r\nlf", "", " lead ", "é"]


def test_traits_parameter() -> None:
    assert parse_traits(None) == [] and parse_traits("") == []
    assert parse_traits("name,location.country") == ["name", "location.country"]
    for bad in ("a,,b", "a..b", ".a", "a,a", ",".join(f"t{i}" for i in range(51))):
        assert isinstance(parse_traits(bad), Problem), bad


def test_trait_values_walk_objects_only() -> None:
    traits = {"name": "Ann", "location": {"country": "FR"}, "tags": ["x"], "n": 0}
    paths = ["name", "location.country", "location.city", "tags", "tags.0", "n", "name.x"]
    assert trait_values(traits, paths) == ["Ann", "FR", None, ["x"], None, 0, None]


def test_csv_round_trips_awkward_ids_and_traits() -> None:
    rows = [
        (pid, 1_700_000_000_000_000 + i, [pid, i, None, {"k": pid}])
        for i, pid in enumerate(AWKWARD[:-3] + AWKWARD[-2:])
    ]
    text = csv_header(["name", "n", "missing", "obj"]) + csv_rows(rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == ["profile_id", "entered_at", "name", "n", "missing", "obj"]
    for (pid, _, values), line in zip(rows, parsed[1:], strict=True):
        assert line[0] == pid and line[2] == pid
        assert line[3] == str(values[1]) and line[4] == ""
        assert orjson.loads(line[5]) == {"k": pid}
        assert line[1].endswith("Z")
    assert text.endswith("\r\n")


def test_jsonl_rows() -> None:
    out = jsonl_rows([("a\nb", 0, ["x", None])], ["name", "tier"])
    [line] = out.splitlines()
    assert orjson.loads(line) == {
        "profile_id": "a\nb",
        "entered_at": "1970-01-01T00:00:00Z",
        "traits": {"name": "x", "tier": None},
    }
