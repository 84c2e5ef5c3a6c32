"""`segstream validate` and `segstream explain` (SPEC §9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from segstream.cli import main


def run(tmp_path: Path, command: str, content: object) -> tuple[int, list[str], str]:
    path = tmp_path / "defs.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    result = CliRunner().invoke(main, [command, str(path)])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def seg(segment_id: str, condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": segment_id, "name": segment_id.upper(), "condition": condition, **extra}


EXISTS = {"trait": "email", "op": "exists"}


def test_validate_one_valid_definition(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "validate", seg("a", EXISTS))
    assert (code, out) == (0, [])


def test_validate_prints_each_problem_with_id_or_index(tmp_path: Path) -> None:
    definitions = [
        seg("vip", {"event": "order.purchased", "within": "30d"}),
        seg("bad", {"and": [EXISTS, {"event": "page.viewed", "within": "400d"}]}),
        {"name": "no id", "condition": {"segment": "nope"}},
        seg("vip", {"segment": "fans"}),
        seg("fans", {"segment": "vip"}),
        seg("vip", {"segment": "fans"}),
    ]
    code, out, err = run(tmp_path, "validate", definitions)
    assert code == 1
    assert out == [
        "bad: condition.and[1].within: a 400d window is longer than the 365d history kept",
        "[2]: id: missing 'id'",
        "[2]: condition.segment: there is no segment 'nope'; define it before referring to it",
        "vip: condition.segment: there is no segment 'fans'; define it before referring to it",
        "vip: condition.segment: segment 'vip' refers to 'fans', which refers back to 'vip'",
    ]
    assert "4 of 6" in err


def test_validate_a_repeated_id_is_an_edit(tmp_path: Path) -> None:
    definitions = [seg("a", EXISTS), seg("b", {"segment": "a"}), seg("a", {"not": EXISTS})]
    assert run(tmp_path, "validate", definitions)[0] == 0


def test_validate_unreadable_and_invalid_files(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "validate", '{"id": ')
    assert code == 1
    assert "not valid JSON" in err
    code, _, err = run(tmp_path, "validate", '{"id": NaN}')
    assert code == 1
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    assert "cannot read" in result.stderr


def test_validate_a_definition_that_is_not_an_object(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "validate", [5])
    assert code == 1
    assert out == [
        "[0]: (definition): a segment definition is an object "
        '{"id", "name", "description", "condition"}, not 5'
    ]


def test_validate_history_retention_option(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(seg("a", {"event": "page.viewed", "within": "400d"})))
    result = CliRunner().invoke(main, ["validate", "--history-retention", "500d", str(path)])
    assert result.exit_code == 0


def test_explain_lines_follow_references_in_file_order(tmp_path: Path) -> None:
    definitions = [
        seg("timed", {"event": "page.viewed", "within": "1h"}),
        seg("plain", {"trait": "location.country", "op": "eq", "value": "US"}),
        seg("mixed", {"and": [{"segment": "plain"}, {"segment": "timed"}, EXISTS]}),
        seg("aged", {"trait": "age", "op": "gte", "value": 18}),
        seg("timed", {"event": "page.viewed"}),
        seg("later", {"segment": "mixed"}),
    ]
    code, out, _ = run(tmp_path, "explain", definitions)
    assert code == 0
    assert [json.loads(line) for line in out] == [
        {
            "id": "timed",
            "traits": [],
            "events": ["page.viewed"],
            "segments": [],
            "time_dependent": True,
        },
        {
            "id": "plain",
            "traits": ["location.country"],
            "events": [],
            "segments": [],
            "time_dependent": False,
        },
        {
            "id": "mixed",
            "traits": ["email"],
            "events": [],
            "segments": ["plain", "timed"],
            "time_dependent": True,
        },
        {"id": "aged", "traits": ["age"], "events": [], "segments": [], "time_dependent": True},
        {
            "id": "timed",
            "traits": [],
            "events": ["page.viewed"],
            "segments": [],
            "time_dependent": False,
        },
        {"id": "later", "traits": [], "events": [], "segments": ["mixed"], "time_dependent": False},
    ]
    assert list(json.loads(out[0])) == ["id", "traits", "events", "segments", "time_dependent"]


def test_explain_reports_invalid_definitions_and_fails(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "explain", [seg("a", {"segment": "nope"}), seg("b", EXISTS)])
    assert code == 1
    assert [json.loads(line)["id"] for line in out] == ["b"]
    assert "a: condition.segment: there is no segment 'nope'" in err


def test_explain_v12_constructs(tmp_path: Path) -> None:
    # SPEC §4.4: every step's type and TYPE_B are events; the for_at_least reference is a
    # segment; each construct below is time dependent, and an absolute sequence window or
    # `matches` alone is not.
    funnel = {
        "sequence": [{"event": "product.viewed"}, {"event": "cart.added"}],
        "within": "7d",
    }
    definitions = [
        seg("funnel", funnel),
        seg("dated", {**funnel, "within": {"after": "2026-01-01"}}),
        seg(
            "abandoned",
            {
                "event": "cart.added",
                "not_followed_by": {"event": "order.purchased", "within": "1h"},
            },
        ),
        seg("plain", EXISTS),
        seg("loyal", {"segment": "plain", "for_at_least": "30d"}),
        seg("renewing", {"trait": "renewal", "op": "within_next", "value": "14d"}),
        seg("birthday", {"trait": "birthdate", "op": "anniversary_within_next", "value": "7d"}),
        seg("gmail", {"trait": "email", "op": "matches", "value": "@gmail\\.com$"}),
        seg("follows-loyal", {"segment": "loyal"}),
    ]
    code, out, _ = run(tmp_path, "explain", definitions)
    assert code == 0
    lines = {line["id"]: line for line in map(json.loads, out)}
    assert lines["funnel"]["events"] == ["cart.added", "product.viewed"]
    assert lines["abandoned"]["events"] == ["cart.added", "order.purchased"]
    assert lines["loyal"]["segments"] == ["plain"]
    timed = {sid for sid, line in lines.items() if line["time_dependent"]}
    assert timed == {"funnel", "abandoned", "loyal", "renewing", "birthday", "follows-loyal"}
