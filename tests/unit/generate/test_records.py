"""The generated input records: valid per SPEC §3, deterministic, realistic in shape."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from segstream.generate import DEFAULT_END, generate_workload, write_workload
from segstream.generate.geography import COUNTRIES
from segstream.schemas.events import parse_input_record
from segstream.timefmt import DAY, SECOND, format_instant, parse_datetime, parse_duration

_UTC_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_ACTIVITY = {
    "link.clicked",
    "page.viewed",
    "product.viewed",
    "cart.added",
    "order.purchased",
    "app.installed",
    "form.completed",
}


def _by_profile(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["profile_id"]].append(record)
    return grouped


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        workload = generate_workload(profiles=120, events=1500, segments=45, seed=11)
        write_workload(workload, tmp_path / name)
    for file in ("segments.json", "events.jsonl"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_another_seed_writes_other_records(tmp_path: Path) -> None:
    for seed in (1, 2):
        write_workload(generate_workload(profiles=50, events=500, segments=5, seed=seed),
                       tmp_path / str(seed))  # fmt: skip
    assert (tmp_path / "1/events.jsonl").read_bytes() != (tmp_path / "2/events.jsonl").read_bytes()


def test_records_do_not_depend_on_the_number_of_segments() -> None:
    few = list(generate_workload(profiles=60, events=600, segments=3, seed=5).records())
    many = list(generate_workload(profiles=60, events=600, segments=90, seed=5).records())
    assert few == many


def test_every_line_is_a_valid_input_event(written_files: Path) -> None:
    lines = (written_files / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == 6000
    for line in lines:
        record = orjson.loads(line)
        assert isinstance(record["id"], str) and 1 <= len(record["id"]) <= 128
        assert _UTC_INSTANT.fullmatch(record["at"]), record["at"]
        assert format_instant(parse_datetime(record["at"])) == record["at"]
        # The project's own input parser is the judge of SPEC §3 validity.
        parse_input_record(line, key=record["profile_id"])


def test_profiles_ids_and_counts(small_records: list[dict[str, Any]]) -> None:
    grouped = _by_profile(small_records)
    assert len(grouped) == 400
    assert all(re.fullmatch(r"p[0-9]{6}", pid) for pid in grouped)
    for pid, records in grouped.items():
        assert records[0]["type"] == "profile.updated", pid
        ids = [r["id"] for r in records]
        assert len(set(ids)) == len(ids), "event ids repeat within a profile"


def test_times_increase_and_stay_in_the_span(small_records: list[dict[str, Any]]) -> None:
    times = [parse_datetime(r["at"]) for r in small_records]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_END - 30 * DAY and times[-1] <= DEFAULT_END
    # Spread over the whole span, not bunched at one end.
    assert times[len(times) // 2] - times[0] > 5 * DAY


def test_first_update_carries_the_standard_traits(small_records: list[dict[str, Any]]) -> None:
    firsts = [rs[0]["traits"] for rs in _by_profile(small_records).values()]
    seen: Counter[str] = Counter()
    for traits in firsts:
        seen.update(traits.keys())
        location = traits["location"]
        assert set(location) == {"city", "region", "country", "lat", "lon"}
        assert location["country"] in COUNTRIES
        assert traits["device"]["type"] in ("desktop", "mobile", "tablet")
        if "mobile_operator" in traits:
            assert traits["mobile_operator"] in COUNTRIES[location["country"]].operators
        assert set(traits["custom"]) >= {"plan", "loyalty_tier", "newsletter", "signup_date"}
        assert traits["custom"]["plan"] in ("free", "pro", "enterprise")
        date.fromisoformat(traits["custom"]["signup_date"])
    for key in ("location", "device", "subscription_source", "custom"):
        assert seen[key] == len(firsts), key
    # Realistic gaps: not everyone gives a gender, a birthdate or a phone number.
    for key in ("gender", "birthdate", "age", "mobile_operator"):
        assert 0 < seen[key] < len(firsts), key
    assert seen["birthdate"] > 0.7 * len(firsts) and seen["age"] > 0.03 * len(firsts)
    assert len({t["location"]["city"] for t in firsts}) >= 25
    assert len({t["custom"]["plan"] for t in firsts}) == 3


def test_ages_are_between_13_and_90_with_some_leap_day_birthdays() -> None:
    records = generate_workload(profiles=3000, events=3000, segments=0, seed=3).records()
    reference = date(2026, 11, 28)
    birthdays = [r["traits"]["birthdate"] for r in records if "birthdate" in r["traits"]]
    for text in birthdays:
        born = date.fromisoformat(text)
        age = (
            reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
        )
        assert 13 <= age <= 90, text
    assert sum(text.endswith("-02-29") for text in birthdays) >= 5


def test_activity_mix(small_records: list[dict[str, Any]]) -> None:
    types = Counter(r["type"] for r in small_records)
    assert set(types) >= _ACTIVITY
    assert any(t.startswith("custom.") for t in types)
    assert types["product.viewed"] > types["cart.added"] > types["order.purchased"] > 0
    assert 0 < types["profile.deleted"] < 20
    assert types["profile.updated"] > 400  # the first one of each profile, then changes
    installs = Counter(
        (r["profile_id"], r["properties"]["app"])
        for r in small_records
        if r["type"] == "app.installed"
    )
    assert installs and max(installs.values()) == 1
    with_device = sum("context" in r for r in small_records)
    assert 0 < with_device < 0.2 * len(small_records)


def test_orders_have_products_amounts_and_currencies(small_records: list[dict[str, Any]]) -> None:
    currencies = {c.currency for c in COUNTRIES.values()}
    orders = [r["properties"] for r in small_records if r["type"] == "order.purchased"]
    for order in orders:
        assert order["currency"] in currencies
        assert order["amount"] > 0
        assert order["products"] and all(
            set(line) == {"product_id", "quantity", "price"} for line in order["products"]
        )
        subtotal = sum(line["quantity"] * line["price"] for line in order["products"])
        assert order["amount"] >= subtotal - 0.01


def test_activity_is_skewed_towards_heavy_users(small_records: list[dict[str, Any]]) -> None:
    counts = sorted((len(rs) for rs in _by_profile(small_records).values()), reverse=True)
    top_tenth = sum(counts[: len(counts) // 10])
    assert top_tenth > 0.3 * sum(counts)


def test_product_popularity_has_a_long_tail(small_records: list[dict[str, Any]]) -> None:
    views = Counter(
        r["properties"]["product_id"] for r in small_records if r["type"] == "product.viewed"
    )
    total = sum(views.values())
    assert views.most_common(1)[0][1] > 5 * (total / len(views))
    assert len(views) > 0.3 * total  # many products are seen once


def test_deletion_is_the_last_record_of_its_profile(small_records: list[dict[str, Any]]) -> None:
    for records in _by_profile(small_records).values():
        kinds = [r["type"] for r in records]
        if "profile.deleted" in kinds:
            assert kinds.index("profile.deleted") == len(kinds) - 1


@pytest.mark.parametrize("share", [0.05])
def test_late_and_duplicate_records_when_asked(share: float) -> None:
    records = list(
        generate_workload(
            profiles=200, events=4000, segments=0, seed=9, late_share=share, duplicate_share=share
        ).records()
    )
    assert len(records) == 4000
    latest, late = 0, 0
    for record in records:
        at = parse_datetime(record["at"])
        late += at < latest
        latest = max(latest, at)
    assert 0.02 * len(records) < late < 0.2 * len(records)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = 0
    for record in records:
        key = (record["profile_id"], record["id"])
        if key in seen:
            duplicates += 1
            assert seen[key] == record  # a redelivery repeats the record exactly
        seen[key] = record
    assert 0.02 * len(records) < duplicates < 0.1 * len(records)


def test_default_workload_has_no_late_or_duplicate_records(
    small_records: list[dict[str, Any]],
) -> None:
    ids = [(r["profile_id"], r["id"]) for r in small_records]
    assert len(set(ids)) == len(ids)


def test_live_times_start_at_now_and_follow_the_rate() -> None:
    start = parse_datetime("2030-01-01T00:00:00Z")
    records = list(
        generate_workload(profiles=20, events=400, segments=0, live_start=start, rate=200).records()
    )
    times = [parse_datetime(r["at"]) for r in records]
    assert times[0] == start
    assert times[-1] == start + (399 * SECOND) // 200
    assert times == sorted(times)


def test_span_and_start_options() -> None:
    start = parse_datetime("2025-03-01T00:00:00Z")
    records = list(
        generate_workload(
            profiles=30, events=300, segments=0, start=start, span=parse_duration("7d")
        ).records()
    )
    times = [parse_datetime(r["at"]) for r in records]
    assert start <= min(times) and max(times) <= start + 7 * DAY


def test_rejects_fewer_events_than_profiles() -> None:
    with pytest.raises(ValueError, match="at least profiles"):
        generate_workload(profiles=10, events=5, segments=0)
