"""The reference tables behind the generator: real places, operators, devices and products."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from segstream.generate.catalogue import CATEGORIES, build_catalogue
from segstream.generate.devices import DEVICES
from segstream.generate.geography import CITIES, COUNTRIES


def _km(a: str, b: str) -> float:
    first = next(c for c in CITIES if c.name == a)
    second = next(c for c in CITIES if c.name == b)
    p1, p2 = math.radians(first.lat), math.radians(second.lat)
    dp, dl = p2 - p1, math.radians(second.lon - first.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def test_about_forty_cities_in_about_fifteen_countries() -> None:
    assert 38 <= len(CITIES) <= 45
    per_country = Counter(city.country for city in CITIES)
    assert set(per_country) == set(COUNTRIES)
    assert 14 <= len(per_country) <= 17
    assert len({city.name for city in CITIES}) == len(CITIES)
    for country in COUNTRIES.values():
        assert len(country.code) == 2 and country.code.isupper()
        assert len(country.currency) == 3 and country.operators


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ("London", "Paris", 344),
        ("New York", "Los Angeles", 3936),
        ("Tokyo", "Osaka", 397),
        ("Sydney", "Melbourne", 714),
        ("São Paulo", "Rio de Janeiro", 361),
        ("Berlin", "Munich", 504),
    ],
)
def test_city_coordinates_give_known_distances(a: str, b: str, km: float) -> None:
    assert _km(a, b) == pytest.approx(km, rel=0.02)


def test_southern_and_western_hemispheres_have_the_right_signs() -> None:
    by_name = {city.name: city for city in CITIES}
    assert by_name["Sydney"].lat < 0 < by_name["Sydney"].lon
    assert by_name["Mexico City"].lon < 0 < by_name["Mexico City"].lat
    assert by_name["Rio de Janeiro"].lat < 0 and by_name["Rio de Janeiro"].lon < 0


def test_devices_use_the_standard_types() -> None:
    assert {device.type for device in DEVICES} == {"desktop", "mobile", "tablet"}


def test_catalogue_has_five_thousand_priced_products_and_fifty_campaigns() -> None:
    catalogue = build_catalogue(random.Random(1))
    assert len(catalogue.products) == 5000
    assert len({p.product_id for p in catalogue.products}) == 5000
    assert {p.category for p in catalogue.products} == set(CATEGORIES)
    assert all(p.price > 0 for p in catalogue.products)
    assert len(catalogue.campaigns) == 50
    assert all(c.link_ids for c in catalogue.campaigns)
