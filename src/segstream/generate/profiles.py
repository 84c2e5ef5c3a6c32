"""Customer personas: their initial standard and custom traits, and later trait changes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from segstream.generate.catalogue import INTERESTS
from segstream.generate.devices import DEVICES, Device
from segstream.generate.geography import CITIES, COUNTRIES, City
from segstream.generate.sampling import WeightedChoice

__all__ = ["PLANS", "SUBSCRIPTION_SOURCES", "Persona", "PersonaFactory"]

PLANS = ("free", "pro", "enterprise")
LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
SUBSCRIPTION_SOURCES = (
    "qr_code", "shareable_link", "form", "checkout_opt_in", "capture", "channel", "short_code",
    "api", "import",
)  # fmt: skip

_GENDERS = WeightedChoice(["female", "male", "non_binary", "undisclosed"], [49, 47, 2, 2])
_SOURCES = WeightedChoice(list(SUBSCRIPTION_SOURCES), [5, 8, 25, 25, 7, 8, 4, 8, 10])
_PLANS = WeightedChoice(list(PLANS), [75, 20, 5])
_TIERS = WeightedChoice(list(LOYALTY_TIERS), [60, 25, 11, 4])
_CITIES = WeightedChoice(list(CITIES), [c.weight for c in CITIES])
_DEVICES = WeightedChoice(list(DEVICES), [d.weight for d in DEVICES])
# Age bands (first age, last age, weight): shoppers are mostly 20-55, with long tails.
_AGE_BANDS = WeightedChoice(
    [(13, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 90)],
    [3, 14, 26, 22, 16, 10, 6, 3],
)


@dataclass(slots=True)
class Persona:
    """One generated customer and the facts later events depend on (where, what device, plan)."""

    profile_id: str
    city: City
    device: Device
    plan: str
    has_operator: bool
    apps: set[str] = field(default_factory=set)  # apps already installed

    @property
    def currency(self) -> str:
        """Currency of the persona's country."""
        return COUNTRIES[self.city.country].currency

    @property
    def price_factor(self) -> float:
        """Multiplier from USD-like catalogue prices to the persona's currency."""
        return COUNTRIES[self.city.country].price_factor


def _location(rng: random.Random, city: City) -> dict[str, Any]:
    # A few kilometres of jitter around the centre, so that `near` conditions have edges.
    return {
        "city": city.name,
        "region": city.region,
        "country": city.country,
        "lat": round(city.lat + rng.uniform(-0.05, 0.05), 4),
        "lon": round(city.lon + rng.uniform(-0.05, 0.05), 4),
    }


class PersonaFactory:
    """Creates personas and their `profile.updated` trait payloads relative to a reference date."""

    def __init__(self, rng: random.Random, reference: date) -> None:
        self._rng = rng
        self._reference = reference

    def create(self, index: int, first_seen: date) -> tuple[Persona, dict[str, Any]]:
        """A new persona first seen on `first_seen`, and the traits of its first update."""
        rng = self._rng
        city = _CITIES.draw(rng)
        device = _DEVICES.draw(rng)
        plan = _PLANS.draw(rng)
        # Desktop-only customers often never give a phone number, so no operator is known.
        has_operator = rng.random() < (0.85 if device.type == "mobile" else 0.45)
        persona = Persona(f"p{index:06d}", city, device, plan, has_operator)

        traits: dict[str, Any] = {}
        if rng.random() < 0.96:
            traits["gender"] = _GENDERS.draw(rng)
        age_source = rng.random()
        if age_source < 0.86:
            traits["birthdate"] = self._birthdate()
        elif age_source < 0.96:
            low, high = _AGE_BANDS.draw(rng)
            traits["age"] = rng.randint(low, high)
        traits["location"] = _location(rng, city)
        traits["device"] = device.as_trait()
        if has_operator:
            traits["mobile_operator"] = rng.choice(COUNTRIES[city.country].operators)
        traits["subscription_source"] = _SOURCES.draw(rng)
        traits["custom"] = self._custom(plan, first_seen)
        return persona, traits

    def _birthdate(self) -> str:
        rng = self._rng
        low, high = _AGE_BANDS.draw(rng)
        age = rng.randint(low, high)
        ref = self._reference
        if rng.random() < 0.01:
            # Leap-day birthdays exercise the "older on 1 March" rule (SPEC §3.1).
            # Capped so that the nearest earlier leap year still gives an age of at most 90.
            year = ref.year - min(age, 86) - 1
            while year % 4 != 0 or (year % 100 == 0 and year % 400 != 0):
                year -= 1
            return date(year, 2, 29).isoformat()
        # Born between age+1 years and age years before the reference date: aged `age` now.
        latest = date(ref.year - age, 1, 1) + timedelta(days=ref.timetuple().tm_yday - 1)
        return (latest - timedelta(days=rng.randrange(365))).isoformat()

    def _custom(self, plan: str, first_seen: date) -> dict[str, Any]:
        rng = self._rng
        tier = _TIERS.draw(rng)
        points_floor = {"bronze": 0, "silver": 1000, "gold": 5000, "platinum": 20000}[tier]
        # Half sign up the day they are first seen; the others are customers from before.
        waited = 0 if rng.random() < 0.5 else int(rng.expovariate(1 / 400))
        signup = first_seen - timedelta(days=waited)
        custom: dict[str, Any] = {
            "plan": plan,
            "loyalty_tier": tier,
            "loyalty_points": points_floor + int(rng.expovariate(1 / 800)),
            "newsletter": rng.random() < 0.4,
            "signup_date": signup.isoformat(),
            # Plans renew yearly from the signup: a date ahead for `within_next` (no draw, so
            # the rest of the workload is what it was before v1.2).
            "renewal_date": _renewal(signup, first_seen).isoformat(),
        }
        stated = rng.choice((0, 1, 1, 2, 2, 3))
        if stated:
            # Absent rather than empty for those who never said, so `exists` means something.
            custom["interests"] = rng.sample(INTERESTS, stated)
        return custom

    def change(self, persona: Persona) -> dict[str, Any]:
        """The traits of a later `profile.updated`: a move, a plan change, or a deleted key."""
        rng = self._rng
        kind = rng.random()
        if kind < 0.25:
            city = _CITIES.draw(rng)
            moved_country = city.country != persona.city.country
            persona.city = city
            traits: dict[str, Any] = {"location": _location(rng, city)}
            if moved_country and persona.has_operator:
                traits["mobile_operator"] = rng.choice(COUNTRIES[city.country].operators)
            return traits
        if kind < 0.5:
            persona.plan = rng.choice([p for p in PLANS if p != persona.plan])
            return {"custom": {"plan": persona.plan}}
        if kind < 0.7:
            return {"custom": {"loyalty_points": int(rng.expovariate(1 / 3000))}}
        if kind < 0.8:
            return {"custom": {"newsletter": rng.random() < 0.5}}
        # `null` deletes a key (SPEC §3.1); pick one the persona is likely to have.
        if kind < 0.88 and persona.has_operator:
            persona.has_operator = False
            return {"mobile_operator": None}
        if kind < 0.94:
            return {"custom": {"interests": None}}
        return {"gender": None}


def _renewal(signup: date, first_seen: date) -> date:
    """The first yearly renewal of a plan signed up on `signup` after `first_seen`."""
    years = first_seen.year - signup.year + 1
    renewal = signup + timedelta(days=365 * years)
    while renewal - timedelta(days=365) > first_seen:
        renewal -= timedelta(days=365)
    return renewal
