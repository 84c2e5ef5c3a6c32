"""`segstream validate`, `explain` and `replay` on values beyond the SPEC v1.1 limits: each
problem on its own line, the other definitions still apply, never a traceback (SPEC §8, §9)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from segstream.cli import main

DEFINITIONS = (
    b'[{"id":"a","name":"A","condition":{"trait":"t","op":"eq","value":99999999999999999999999}},'
    b'{"id":"b","name":"B","condition":{"trait":"t","op":"eq","value":"\\ud800"}},'
    b'{"id":"c","name":"C","condition":{"trait":"signup","op":"within_last","value":"300000000d"}},'
    b'{"id":"d","name":"D","condition":{"trait":"x","op":"gt","value":1e400}},'
    b'{"id":"e","name":"E","condition":{"segment":"e"}},'
    b'{"id":"f","name":"F","condition":{"trait":"t","op":"exists"}}]'
)
EVENTS = b"\n".join(
    [
        b'{"id":"e1","type":"profile.updated","profile_id":"p","at":"2026-01-01T00:00:00Z","traits":{"t":1}}',
        b'{"id":"e2","type":"profile.updated","profile_id":"p","at":"2026-01-01T00:00:00Z","traits":{"t":99999999999999999999}}',
        b'{"id":"\\ud800","type":"page.viewed","profile_id":"p","at":"2026-01-01T00:00:00Z"}',
        b'{"type":"segment.upserted","at":"2026-01-02T00:00:00Z","segment":{"id":"g","name":"G","condition":{"trait":"t","op":"gt","value":1e400}}}',
        b"\xff\xfe",
        b'{"id":"e3","type":"page.viewed","profile_id":"p","at":"9999-12-31T23:59:59-05:00"}',
        b'{"id":"e4","type":"page.viewed","profile_id":"p","at":"2026-01-01T00:00:00Z","x":'
        + b"[" * 5000
        + b"]" * 5000
        + b"}",
    ]
)


def test_validate_and_explain_report_each_limit_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "defs.json"
    path.write_bytes(DEFINITIONS)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert (result.exit_code == 1 and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    assert result.stdout.splitlines() == [
        "a: condition.value: an integer outside [-2^63, 2^63 - 1]; definitions obey the limits "
        "of input values",
        "b: condition.value: a string with a lone surrogate (not valid Unicode); definitions "
        "obey the limits of input values",
        "c: condition.value: 300000000d is longer than 36,500 days, the longest duration",
        "d: condition.value: a number that is not finite as a double; definitions obey the "
        "limits of input values",
        "e: condition.segment: segment 'e' refers to itself",
    ]
    explained = CliRunner().invoke(main, ["explain", str(path)])
    assert explained.stdout.splitlines() == [
        '{"id":"f","traits":["t"],"events":[],"segments":[],"time_dependent":false}'
    ]


def test_replay_always_completes_and_reports_each_bad_line(tmp_path: Path) -> None:
    segments, events = tmp_path / "segs.json", tmp_path / "events.jsonl"
    segments.write_bytes(DEFINITIONS)
    events.write_bytes(EVENTS + b"\n")
    out = tmp_path / "out.jsonl"
    args = ["replay", "--segments", str(segments), "--events", str(events), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0:2] for line in lines] == [
        ["line 2", " schema"],
        ["line 3", " invalid_json"],
        ["line 4", " invalid_json"],
        ["line 5", " invalid_json"],
        ["line 6", " schema"],
        ["line 7", " schema"],
    ]
    assert out.read_text().count('"segment.entered"') == 1  # f, for e1
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 1
