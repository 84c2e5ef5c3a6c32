"""Distinct, selective segment definitions that together use every node kind and operator."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from segstream.generate.catalogue import APPS, CATEGORIES, FORMS, INTERESTS, SITE, Catalogue
from segstream.generate.geography import CITIES, COUNTRIES, City
from segstream.timefmt import DAY, utc_date

__all__ = ["SegmentFactory", "generate_segments"]

Condition = dict[str, Any]


def _trait(path: str, op: str, value: Any = None, ignore_case: bool = False) -> Condition:
    node: Condition = {"trait": path, "op": op}
    if op not in ("exists", "not_exists"):
        node["value"] = value
    if ignore_case:
        node["ignore_case"] = True
    return node


def _where(path: str, op: str, value: Any, ignore_case: bool = False) -> Condition:
    node: Condition = {"property": path, "op": op, "value": value}
    if ignore_case:
        node["ignore_case"] = True
    return node


def _event(
    kind: str, *, where: list[Condition] | None = None, within: Any = None, **measure: Any
) -> Condition:
    node: Condition = {"event": kind}
    if where:
        node["where"] = where
    if within is not None:
        node["within"] = within
    node.update(measure)
    return node


def _money(amount: float, factor: float) -> float | int:
    # Thresholds in round local-currency figures ("more than 200 EUR", "more than 30000 JPY").
    value = amount * factor
    return int(round(value, -2)) if value >= 1000 else round(value)


@dataclass
class SegmentFactory:
    """Draws segment definitions from templates; each template is a kind of marketing audience."""

    rng: random.Random
    catalogue: Catalogue
    end: int
    # (id, name) of the earlier definitions that references may point to.
    earlier: list[tuple[str, str]] = field(default_factory=list)

    # -- parameters ------------------------------------------------------------------------
    def _city(self) -> City:
        return CITIES[self.rng.randrange(len(CITIES))]

    def _country(self) -> str:
        return self.rng.choice(sorted(COUNTRIES))

    def _product(self) -> str:
        # Any of the 500 best sellers: marketers target what sells, but not only the top one.
        return self.rng.choice(self.catalogue.popular_products(500)).product_id

    def _days(self, *choices: int) -> str:
        return f"{self.rng.choice(choices)}d"

    def _date(self, days_before_end: int) -> str:
        return utc_date(self.end - days_before_end * DAY).isoformat()

    def _reference(self) -> tuple[str, str] | None:
        return self.rng.choice(self.earlier) if self.earlier else None

    # -- templates: each returns (name, condition) or None when it cannot apply yet ---------
    def city_paying(self) -> tuple[str, Condition]:
        city = self._city()
        folded = self.rng.random() < 0.3
        name_value = city.name.lower() if folded else city.name
        plans = self.rng.choice((["enterprise"], ["pro"]))
        return f"Paying ({'/'.join(plans)}) customers in {city.name}", {
            "and": [
                _trait("location.city", "eq", name_value, ignore_case=folded),
                _trait("custom.plan", "in", plans),
            ]
        }

    def age_band(self) -> tuple[str, Condition]:
        low = self.rng.randint(13, 80)
        gender = self.rng.choice(("female", "male"))
        country = self._country()
        return f"{gender.title()} customers aged {low}-{low + 4} in {country}", {
            "and": [
                _trait("age", "between", [low, low + 4]),
                _trait("gender", "eq", gender),
                _trait("location.country", "eq", country),
            ]
        }

    def near_city(self) -> tuple[str, Condition]:
        city = self._city()
        km = self.rng.choice((2, 3, 5, 8))
        device = self.rng.choice(("mobile", "tablet", "desktop"))
        plan = self.rng.choice(("pro", "enterprise"))
        return f"{device.title()} {plan} users within {km} km of central {city.name}", {
            "and": [
                _trait("location", "near", {"lat": city.lat, "lon": city.lon, "km": km}),
                _trait("device.type", "eq", device),
                _trait("custom.plan", "eq", plan),
            ]
        }

    def bought_product(self) -> tuple[str, Condition]:
        product, days = self._product(), self._days(3, 7, 14, 30)
        where = [_where("products.product_id", "eq", product)]
        return f"Bought {product} in the last {days}", _event(
            "order.purchased", where=where, within=days
        )

    def viewed_often(self) -> tuple[str, Condition]:
        product, days = self._product(), self._days(7, 14)
        times = self.rng.randint(2, 4)
        return f"Viewed {product} at least {times} times in {days}", _event(
            "product.viewed",
            where=[_where("product_id", "eq", product)],
            within=days,
            count={"op": "gte", "value": times},
        )

    def big_spenders(self) -> tuple[str, Condition]:
        country = self._country()
        info = COUNTRIES[country]
        threshold = _money(self.rng.choice((200, 300, 500, 800, 1000)), info.price_factor)
        days = self._days(7, 30, 90)
        return f"Spent more than {threshold} {info.currency} in {days} ({country})", {
            "and": [
                _trait("location.country", "eq", country),
                _event(
                    "order.purchased",
                    where=[_where("currency", "eq", info.currency)],
                    within=days,
                    sum="amount",
                    op="gt",
                    value=threshold,
                ),
            ]
        }

    def campaign_clickers(self) -> tuple[str, Condition]:
        campaign = self.catalogue.campaigns[self.rng.randrange(len(self.catalogue.campaigns))]
        days, country = self._days(1, 7, 30), self._country()
        return f"Clicked {campaign.campaign_id} ({campaign.slug}) in {days} ({country})", {
            "and": [
                _trait("location.country", "eq", country),
                _event(
                    "link.clicked",
                    where=[_where("campaign_id", "eq", campaign.campaign_id)],
                    within=days,
                ),
            ]
        }

    def promo_window(self) -> tuple[str, Condition]:
        campaign = self.catalogue.campaigns[self.rng.randrange(len(self.catalogue.campaigns))]
        first = self.rng.randint(3, 28)
        window: dict[str, str] = {"after": self._date(first), "before": self._date(first - 3)}
        if self.rng.random() < 0.2:
            del window[self.rng.choice(("after", "before"))]
        link = self.rng.randrange(1, len(campaign.link_ids) + 1)
        return f"Followed link {link} of {campaign.slug} ({', '.join(window.values())})", _event(
            "link.clicked",
            where=[
                _where("url", "starts_with", f"{SITE}/promo/{campaign.slug}"),
                _where("link_id", "ends_with", f"-{link}"),
            ],
            within=window,
        )

    def high_average_order(self) -> tuple[str, Condition]:
        city = self._city()
        info = COUNTRIES[city.country]
        threshold = _money(self.rng.choice((150, 250, 400)), info.price_factor)
        return f"Average order above {threshold} {info.currency} in {city.name} (90d)", {
            "and": [
                _trait("location.city", "eq", city.name),
                _event("order.purchased", within="90d", avg="amount", op="gte", value=threshold),
            ]
        }

    def luxury_item(self) -> tuple[str, Condition]:
        country = self._country()
        info = COUNTRIES[country]
        threshold = _money(self.rng.choice((500, 800, 1200)), info.price_factor)
        since = self._date(self.rng.randint(7, 29))
        return f"Bought an item over {threshold} {info.currency} since {since}", _event(
            "order.purchased",
            where=[_where("currency", "eq", info.currency)],
            within={"after": since},
            max="products.price",
            op="gt",
            value=threshold,
        )

    def small_orders(self) -> tuple[str, Condition]:
        city = self._city()
        info = COUNTRIES[city.country]
        threshold = _money(self.rng.choice((10, 15, 20)), info.price_factor)
        return f"Placed an order under {threshold} {info.currency} in {city.name} (30d)", {
            "and": [
                _trait("location.city", "eq", city.name),
                _event("order.purchased", within="30d", min="amount", op="lt", value=threshold),
            ]
        }

    def category_browsers(self) -> tuple[str, Condition]:
        city = self._city()
        category = self.rng.choice(sorted(CATEGORIES))
        low = self.rng.randint(3, 6)
        return f"Browsed /category/{category} {low}+ times today in {city.name}", {
            "and": [
                _trait("location.city", "eq", city.name),
                _event(
                    "page.viewed",
                    where=[_where("path", "starts_with", f"/category/{category}")],
                    within="1d",
                    count={"op": "between", "value": [low, low + 50]},
                ),
            ]
        }

    def lapsed_pro(self) -> tuple[str, Condition]:
        city, days = self._city(), self._days(14, 30, 60)
        plan = self.rng.choice(("pro", "enterprise"))
        return f"{plan.title()} newsletter readers in {city.name} with no order in {days}", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("custom.plan", "eq", plan),
                _trait("custom.newsletter", "eq", True),
                {"not": _event("order.purchased", within=days)},
            ]
        }

    def stated_age(self) -> tuple[str, Condition]:
        country, age = self._country(), self.rng.choice((50, 60, 65, 70))
        return f"Stated age {age}+ without a birthdate ({country})", {
            "and": [
                _trait("birthdate", "not_exists"),
                _trait("age", "gte", age),
                _trait("location.country", "eq", country),
            ]
        }

    def interest(self) -> tuple[str, Condition]:
        country, topic = self._country(), self.rng.choice(INTERESTS)
        gender = self.rng.choice(("female", "male"))
        return f"{gender.title()} customers interested in {topic} ({country})", {
            "and": [
                _trait("custom.interests", "contains", topic),
                _trait("gender", "eq", gender),
                _trait("location.country", "eq", country),
            ]
        }

    def device_brand(self) -> tuple[str, Condition]:
        city = self._city()
        fragment = self.rng.choice(("sam", "APPLE", "lenovo", "Xiao", "amaz", "goog"))
        gender = self.rng.choice(("female", "male"))
        return f"{gender.title()} users of '{fragment}' devices in {city.name}", {
            "and": [
                _trait("device.brand", "contains", fragment, ignore_case=True),
                _trait("gender", "eq", gender),
                _trait("location.city", "eq", city.name),
            ]
        }

    def recent_signups(self) -> tuple[str, Condition]:
        city, days = self._city(), self._days(7, 14, 30)
        source = self.rng.choice(("form", "checkout_opt_in", "import", "api"))
        return f"Signed up via {source} in the last {days} in {city.name}", {
            "and": [
                _trait("custom.signup_date", "within_last", days),
                _trait("subscription_source", "eq", source),
                _trait("location.city", "eq", city.name),
            ]
        }

    def veterans(self) -> tuple[str, Condition]:
        country, days = self._country(), self._days(365, 730, 1095)
        tier = self.rng.choice(("gold", "platinum"))
        return f"{tier.title()} members who signed up more than {days} ago ({country})", {
            "and": [
                _trait("custom.signup_date", "more_than_ago", days),
                _trait("custom.loyalty_tier", "eq", tier),
                _trait("location.country", "eq", country),
            ]
        }

    def born_before(self) -> tuple[str, Condition]:
        city, year = self._city(), self.rng.randint(1940, 1965)
        gender = self.rng.choice(("female", "male"))
        return f"{gender.title()} customers born before {year} in {city.name}", {
            "and": [
                _trait("birthdate", "before", f"{year}-01-01"),
                _trait("gender", "eq", gender),
                _trait("location.city", "eq", city.name),
            ]
        }

    def born_after(self) -> tuple[str, Condition]:
        year = self.rng.randint(2003, 2010)
        source = self.rng.choice(("qr_code", "short_code", "shareable_link", "channel"))
        return f"Born after mid-{year}, subscribed via {source}", {
            "and": [
                _trait("birthdate", "after", f"{year}-06-30T23:59:59Z"),
                _trait("subscription_source", "eq", source),
            ]
        }

    def other_genders(self) -> tuple[str, Condition]:
        city = self._city()
        return f"Neither female nor male, or unknown, in {city.name}", {
            "and": [
                _trait("gender", "not_in", ["female", "male"]),
                _trait("location.city", "eq", city.name),
            ]
        }

    def operator_os(self) -> tuple[str, Condition]:
        country = self._country()
        operator = self.rng.choice(COUNTRIES[country].operators)
        os = self.rng.choice(("iOS", "Android", "Windows"))
        plan = self.rng.choice(("pro", "enterprise"))
        return f"{operator} {plan} subscribers not on {os}", {
            "and": [
                _trait("mobile_operator", "eq", operator),
                _trait("device.os", "neq", os),
                _trait("custom.plan", "eq", plan),
            ]
        }

    def loyalty_points(self) -> tuple[str, Condition]:
        country = self._country()
        low = self.rng.choice((5000, 5500, 6000, 7000))
        high = low + self.rng.choice((500, 1000, 2000))
        return f"Gold members with {low}-{high} points ({country})", {
            "and": [
                _trait("custom.loyalty_tier", "eq", "gold"),
                _trait("custom.loyalty_points", "gt", low),
                _trait("custom.loyalty_points", "lte", high),
                _trait("location.country", "eq", country),
            ]
        }

    def newsletter_source(self) -> tuple[str, Condition]:
        city = self._city()
        opted = self.rng.random() < 0.5
        sources = self.rng.sample(("capture", "short_code", "qr_code", "api", "import"), 2)
        label = "Newsletter readers" if opted else "Non-subscribers"
        return f"{label} from {' or '.join(sources)} in {city.name}", {
            "and": [
                _trait("custom.newsletter", "eq", opted),
                _trait("subscription_source", "in", sources),
                _trait("location.city", "eq", city.name),
            ]
        }

    def desktop_no_operator(self) -> tuple[str, Condition]:
        city = self._city()
        tiers = self.rng.choice((["gold", "platinum"], ["silver"]))
        return f"{'/'.join(tiers)} desktop users without a mobile operator in {city.name}", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("mobile_operator", "not_exists"),
                _trait("device.type", "eq", "desktop"),
                _trait("custom.loyalty_tier", "in", tiers),
            ]
        }

    def young_with_interests(self) -> tuple[str, Condition]:
        city, age = self._city(), self.rng.choice((21, 25, 30))
        gender = self.rng.choice(("female", "male"))
        return f"{gender.title()} customers under {age} with stated interests in {city.name}", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("gender", "eq", gender),
                _trait("custom.interests", "exists"),
                _trait("age", "lt", age),
            ]
        }

    def video_fans(self) -> tuple[str, Condition]:
        video = self.catalogue.video_popularity.draw(self.rng)
        seconds = self.rng.choice((300, 600, 900))
        return f"Watched {video} for {seconds}+ s this week", _event(
            "custom.video_watched",
            where=[_where("video_id", "eq", video)],
            within="7d",
            sum="seconds",
            op="gte",
            value=seconds,
        )

    def app_installers(self) -> tuple[str, Condition]:
        app = self.rng.choice(sorted(APPS))
        platform = self.rng.choice(APPS[app])
        country = self._country()
        return f"Installed {app} on {platform} ({country})", {
            "and": [
                _event(
                    "app.installed",
                    where=[_where("app", "eq", app), _where("platform", "eq", platform)],
                ),
                _trait("location.country", "eq", country),
            ]
        }

    def form_fillers(self) -> tuple[str, Condition]:
        forms = self.rng.sample(FORMS, 2)
        country, days = self._country(), self._days(7, 30)
        return f"Completed {' or '.join(forms)} in {days} ({country})", {
            "and": [
                _event("form.completed", where=[_where("form_id", "in", forms)], within=days),
                _trait("location.country", "eq", country),
            ]
        }

    def cart_abandoners(self) -> tuple[str, Condition]:
        product, days = self._product(), self._days(1, 3, 7)
        return f"Added {product} to the cart in {days} but did not buy it", {
            "and": [
                _event("cart.added", where=[_where("product_id", "eq", product)], within=days),
                {
                    "not": _event(
                        "order.purchased",
                        where=[_where("products.product_id", "eq", product)],
                        within=days,
                    )
                },
            ]
        }

    def review_readers(self) -> tuple[str, Condition]:
        product = self._product()
        return f"Read the reviews of {product} twice this week", _event(
            "page.viewed",
            where=[
                _where("path", "ends_with", "/reviews"),
                _where("path", "contains", product),
            ],
            within="7d",
            count={"op": "gte", "value": 2},
        )

    def single_order(self) -> tuple[str, Condition]:
        city = self._city()
        plan = self.rng.choice(("pro", "enterprise"))
        return f"{plan.title()} customers in {city.name} with exactly one order in 90d", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("custom.plan", "eq", plan),
                _event("order.purchased", within="90d", count={"op": "eq", "value": 1}),
            ]
        }

    def repeat_visitors(self) -> tuple[str, Condition]:
        city = self._city()
        tier = self.rng.choice(("gold", "platinum"))
        return f"{tier.title()} members in {city.name} who visited the store this month", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("custom.loyalty_tier", "eq", tier),
                _event("custom.store_visited", within="30d", count={"op": "neq", "value": 0}),
            ]
        }

    def heavy_viewers(self) -> tuple[str, Condition]:
        city = self._city()
        views = self.rng.choice((20, 30, 50))
        return f"Viewed more than {views} products this week in {city.name}", {
            "and": [
                _trait("location.city", "eq", city.name),
                _event("product.viewed", within="7d", count={"op": "gt", "value": views}),
            ]
        }

    def quiet_enterprise(self) -> tuple[str, Condition]:
        city = self._city()
        views = self.rng.choice((1, 2, 3))
        return f"Enterprise customers in {city.name} with under {views} page views (7d)", {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("custom.plan", "eq", "enterprise"),
                _event("page.viewed", within="7d", count={"op": "lt", "value": views}),
            ]
        }

    def low_spend_pro(self) -> tuple[str, Condition]:
        city = self._city()
        info = COUNTRIES[city.country]
        threshold = _money(self.rng.choice((20, 50)), info.price_factor)
        return (
            f"Silver pro customers in {city.name} spending at most {threshold} {info.currency}",
            {
                "and": [
                    _trait("location.city", "eq", city.name),
                    _trait("custom.plan", "eq", "pro"),
                    _trait("custom.loyalty_tier", "eq", "silver"),
                    _event(
                        "order.purchased", within="30d", sum="amount", op="lte", value=threshold
                    ),
                ]
            },
        )

    def two_cities(self) -> tuple[str, Condition]:
        first, second = self.rng.sample(CITIES, 2)
        return f"Enterprise customers in {first.name} or {second.name}", {
            "and": [
                {
                    "or": [
                        _trait("location.city", "eq", first.name),
                        _trait("location.city", "eq", second.name),
                    ]
                },
                _trait("custom.plan", "eq", "enterprise"),
            ]
        }

    def segment_buyers(self) -> tuple[str, Condition] | None:
        target = self._reference()
        if target is None:
            return None
        days = self._days(7, 30)
        return f"{target[1]} — purchased in {days}"[:200], {
            "and": [{"segment": target[0]}, _event("order.purchased", within=days)]
        }

    def segment_union(self) -> tuple[str, Condition] | None:
        first, second = self._reference(), self._reference()
        if first is None or second is None or first == second:
            return None
        return f"{first[1]} or {second[1]}"[:200], {
            "or": [{"segment": first[0]}, {"segment": second[0]}]
        }

    def segment_excluding(self) -> tuple[str, Condition] | None:
        target = self._reference()
        if target is None:
            return None
        city = self._city()
        return f"{city.name} pro newsletter readers not in '{target[1]}'"[:200], {
            "and": [
                _trait("location.city", "eq", city.name),
                _trait("custom.newsletter", "eq", True),
                _trait("custom.plan", "eq", "pro"),
                {"not": {"segment": target[0]}},
            ]
        }

    # -- v1.2 (SPEC §4.4) -----------------------------------------------------------------
    def abandoned_cart(self) -> tuple[str, Condition]:
        product, hours = self._product(), self.rng.choice((1, 2, 24))
        return f"Added {product} to the cart, then did not buy it within {hours}h (7d)", {
            "event": "cart.added",
            "where": [_where("product_id", "eq", product)],
            "within": "7d",
            "not_followed_by": {
                "event": "order.purchased",
                "where": [_where("products.product_id", "eq", product)],
                "within": f"{hours}h",
            },
        }

    def funnel(self) -> tuple[str, Condition]:
        product, days = self._product(), self._days(1, 7)
        return f"Viewed {product}, then added it, then bought within {days}", {
            "sequence": [
                {"event": "product.viewed", "where": [_where("product_id", "eq", product)]},
                {"event": "cart.added", "where": [_where("product_id", "eq", product)]},
                {
                    "event": "order.purchased",
                    "where": [_where("products.product_id", "eq", product)],
                },
            ],
            "within": days,
        }

    def birthday_soon(self) -> tuple[str, Condition]:
        city, days = self._city(), self._days(3, 7, 14)
        return f"Birthday in the next {days} in {city.name}", {
            "and": [
                _trait("birthdate", "anniversary_within_next", days),
                _trait("location.city", "eq", city.name),
            ]
        }

    def signup_anniversary(self) -> tuple[str, Condition]:
        country, weeks = self._country(), self.rng.choice((1, 2))
        return f"Signup anniversary in the last {weeks}w ({country})", {
            "and": [
                _trait("custom.signup_date", "anniversary_within_last", f"{weeks}w"),
                _trait("location.country", "eq", country),
            ]
        }

    def renewal_due(self) -> tuple[str, Condition]:
        city, days = self._city(), self._days(7, 14, 30)
        plan = self.rng.choice(("pro", "enterprise"))
        return f"{plan.title()} plans renewing in the next {days} in {city.name}", {
            "and": [
                _trait("custom.renewal_date", "within_next", days),
                _trait("custom.plan", "eq", plan),
                _trait("location.city", "eq", city.name),
            ]
        }

    def promo_pattern(self) -> tuple[str, Condition]:
        first, second = self.rng.sample(self.catalogue.campaigns, 2)
        days = self._days(7, 30)
        pattern = f"/promo/({first.slug}|{second.slug})[?/]"
        country = self._country()
        return f"Clicked {first.slug} or {second.slug} links in {days} ({country})", {
            "and": [
                _trait("location.country", "eq", country),
                _event(
                    "link.clicked",
                    where=[_where("url", "matches", pattern, ignore_case=self.rng.random() < 0.5)],
                    within=days,
                ),
            ]
        }

    def loyal_members(self) -> tuple[str, Condition] | None:
        target = self._reference()
        if target is None:
            return None
        days = self._days(7, 30, 90)
        return f"{target[1]} — a member for at least {days}"[:200], {
            "segment": target[0],
            "for_at_least": days,
        }


Template = Callable[[SegmentFactory], "tuple[str, Condition] | None"]

# Round-robin order: any 47 consecutive definitions use every template once, so every node
# kind and operator appears as soon as K >= len(TEMPLATES); references come after their targets.
TEMPLATES: tuple[Template, ...] = (
    SegmentFactory.city_paying,
    SegmentFactory.age_band,
    SegmentFactory.near_city,
    SegmentFactory.bought_product,
    SegmentFactory.viewed_often,
    SegmentFactory.big_spenders,
    SegmentFactory.campaign_clickers,
    SegmentFactory.promo_window,
    SegmentFactory.high_average_order,
    SegmentFactory.luxury_item,
    SegmentFactory.small_orders,
    SegmentFactory.category_browsers,
    SegmentFactory.lapsed_pro,
    SegmentFactory.stated_age,
    SegmentFactory.interest,
    SegmentFactory.device_brand,
    SegmentFactory.segment_buyers,
    SegmentFactory.recent_signups,
    SegmentFactory.veterans,
    SegmentFactory.born_before,
    SegmentFactory.born_after,
    SegmentFactory.other_genders,
    SegmentFactory.operator_os,
    SegmentFactory.segment_union,
    SegmentFactory.loyalty_points,
    SegmentFactory.newsletter_source,
    SegmentFactory.desktop_no_operator,
    SegmentFactory.young_with_interests,
    SegmentFactory.video_fans,
    SegmentFactory.app_installers,
    SegmentFactory.form_fillers,
    SegmentFactory.cart_abandoners,
    SegmentFactory.review_readers,
    SegmentFactory.single_order,
    SegmentFactory.repeat_visitors,
    SegmentFactory.heavy_viewers,
    SegmentFactory.quiet_enterprise,
    SegmentFactory.low_spend_pro,
    SegmentFactory.two_cities,
    SegmentFactory.segment_excluding,
    # v1.2: after the others, so that the first 40 definitions stay what they were.
    SegmentFactory.abandoned_cart,
    SegmentFactory.funnel,
    SegmentFactory.birthday_soon,
    SegmentFactory.signup_anniversary,
    SegmentFactory.renewal_due,
    SegmentFactory.promo_pattern,
    SegmentFactory.loyal_members,
)

_ATTEMPTS = 40
_REFERENCING = frozenset(
    {
        SegmentFactory.segment_buyers,
        SegmentFactory.segment_union,
        SegmentFactory.segment_excluding,
        SegmentFactory.loyal_members,
    }
)


def generate_segments(
    rng: random.Random, catalogue: Catalogue, end: int, count: int, templates: int = 0
) -> Iterator[dict[str, Any]]:
    """`count` distinct definitions with ids `seg-00001`…; references point to earlier ones.

    `templates` > 0 draws from the first `templates` templates only: 40 gives the mix of the
    benchmarks before rule language v1.2 (so old and new code can be measured on one workload).
    """
    if not 0 <= templates <= len(TEMPLATES):
        raise ValueError(f"templates must be between 0 and {len(TEMPLATES)}")
    rotation = TEMPLATES[:templates] if templates else TEMPLATES
    factory = SegmentFactory(rng, catalogue, end)
    seen: set[bytes] = set()
    turn = 0
    for number in range(1, count + 1):
        segment_id = f"seg-{number:05d}"
        made: tuple[str, Condition] | None = None
        misses = 0
        while made is None:
            template = rotation[turn % len(rotation)]
            turn += 1
            for _ in range(_ATTEMPTS):
                candidate = template(factory)
                if candidate is None:
                    break
                key = orjson.dumps(candidate[1], option=orjson.OPT_SORT_KEYS)
                if key not in seen:
                    seen.add(key)
                    made = candidate
                    break
            misses += 1
            if made is None and misses > 2 * len(rotation):
                raise ValueError(f"cannot make {count} distinct definitions")
        name, condition = made
        # References point only at plain segments, so chains stay short and selective.
        if template not in _REFERENCING:
            factory.earlier.append((segment_id, name))
        yield {"id": segment_id, "name": name, "condition": condition}
