"""`segstream generate` on the command line: files, determinism, options and errors."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from click.testing import CliRunner

from segstream.cli import main
from segstream.timefmt import SECOND, parse_datetime


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["generate", *args])
    return result.exit_code, result.output


def test_writes_replay_files(tmp_path: Path) -> None:
    code, output = _run(
        "--profiles", "50", "--events", "700", "--segments", "45", "--seed", "4",
        "--out", str(tmp_path / "w"),
    )  # fmt: skip
    assert code == 0, output
    assert "45 definitions" in output and "700 records" in output
    definitions = orjson.loads((tmp_path / "w/segments.json").read_bytes())
    assert [d["id"] for d in definitions][:2] == ["seg-00001", "seg-00002"]
    assert len(definitions) == 45
    lines = (tmp_path / "w/events.jsonl").read_bytes().splitlines()
    assert len(lines) == 700


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = ["--profiles", "30", "--events", "300", "--segments", "10", "--seed", "9"]
        code, output = _run(*args, "--span", "7d", "--end", "2026-06-01", "--out",
                            str(tmp_path / name))  # fmt: skip
        assert code == 0, output
    for file in ("segments.json", "events.jsonl"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    last = orjson.loads((tmp_path / "a/events.jsonl").read_bytes().splitlines()[-1])
    first = orjson.loads((tmp_path / "a/events.jsonl").read_bytes().splitlines()[0])
    assert parse_datetime("2026-05-25T00:00:00Z") <= parse_datetime(first["at"])
    assert parse_datetime(last["at"]) <= parse_datetime("2026-06-01T00:00:00Z")


def test_start_sets_the_first_instant(tmp_path: Path) -> None:
    code, output = _run("--profiles", "20", "--events", "200", "--segments", "0",
                        "--start", "2027-01-01T00:00:00Z", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, output
    records = [orjson.loads(line) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()]
    assert min(parse_datetime(r["at"]) for r in records) >= parse_datetime("2027-01-01T00:00:00Z")


def test_live_times_follow_the_wall_clock(tmp_path: Path) -> None:
    before = time.time_ns() // 1000
    code, output = _run("--profiles", "10", "--events", "100", "--segments", "0", "--live",
                        "--rate", "50", "--out", str(tmp_path))  # fmt: skip
    after = time.time_ns() // 1000
    assert code == 0, output
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    times = [parse_datetime(orjson.loads(line)["at"]) for line in lines]
    assert before <= times[0] <= after
    assert times[-1] - times[0] == 99 * SECOND // 50


def test_fewer_events_than_profiles_is_an_error(tmp_path: Path) -> None:
    code, output = _run("--profiles", "10", "--events", "5", "--out", str(tmp_path))
    assert code == 2
    assert "--events" in output


def test_bad_duration_is_an_error(tmp_path: Path) -> None:
    code, output = _run("--profiles", "1", "--events", "1", "--span", "month",
                        "--out", str(tmp_path))  # fmt: skip
    assert code == 2
    assert "duration" in output
