"""Browsing sessions of one persona: views, cart additions, orders, clicks and custom actions."""

from __future__ import annotations

import math
import random
from typing import Any

from segstream.generate.catalogue import APPS, FORMS, SITE, Catalogue, Product
from segstream.generate.devices import DEVICES
from segstream.generate.profiles import Persona
from segstream.timefmt import SECOND

__all__ = ["MAX_GAP", "MAX_SESSION", "SessionBuilder", "SessionEvent"]

# (offset from the session start in microseconds, type, properties, context or None)
SessionEvent = tuple[int, str, dict[str, Any], dict[str, Any] | None]

MAX_SESSION = 30
# Longest pause between two events of a session; bounds how long a session can last.
MAX_GAP = 10 * 60 * SECOND

_INFO_PATHS = ("/", "/account", "/pricing", "/help/shipping", "/help/returns", "/stores", "/blog")
_STORES = tuple(f"store-{n:03d}" for n in range(1, 61))


def _gap(rng: random.Random) -> int:
    # Log-normal think time around 20 s, whole milliseconds, capped at MAX_GAP. (exp of
    # gauss() is the same distribution as lognormvariate(), and cheaper.)
    millis = int(math.exp(rng.gauss(9.9, 1.0)))
    return min(max(millis, 500), MAX_GAP // 1000) * 1000


def _price(product: Product, persona: Persona) -> float:
    factor = persona.price_factor
    # Whole units where the currency has no useful cents (JPY, INR).
    return round(product.price * factor, 0 if factor >= 50 else 2)


def _page(path: str) -> dict[str, Any]:
    return {"url": SITE + path, "path": path}


class SessionBuilder:
    """Turns a persona and a number of events into one realistic session of exactly that size."""

    def __init__(self, rng: random.Random, catalogue: Catalogue) -> None:
        self._rng = rng
        self._catalogue = catalogue

    def build(self, persona: Persona, size: int) -> list[SessionEvent]:
        """Exactly `size` events: browsing first, then sometimes a cart addition and an order."""
        rng = self._rng
        purchase = size >= 3 and rng.random() < 0.16
        cart = purchase or (size >= 2 and rng.random() < 0.15)
        browse = size - (2 if purchase else 1 if cart else 0)
        viewed: list[Product] = []
        events: list[SessionEvent] = []
        offset = 0
        for position in range(browse):
            kind, properties = self._browse(persona, position, viewed)
            events.append((offset, kind, properties, self._context(persona)))
            offset += _gap(rng)
        if cart:
            product = viewed[-1] if viewed else self._catalogue.product_popularity.draw(rng)
            quantity = 1 if rng.random() < 0.8 else rng.randint(2, 4)
            line = {"product_id": product.product_id, "quantity": quantity}
            line["price"] = _price(product, persona)
            events.append((offset, "cart.added", line, self._context(persona)))
            offset += _gap(rng)
            if purchase:
                events.append((offset, "order.purchased", self._order(persona, line, viewed), None))
        return events

    def _browse(
        self, persona: Persona, position: int, viewed: list[Product]
    ) -> tuple[str, dict[str, Any]]:
        rng = self._rng
        catalogue = self._catalogue
        roll = rng.random()
        if position == 0 and roll < 0.18:
            campaign = catalogue.campaign_popularity.draw(rng)
            link = rng.randrange(len(campaign.link_ids))
            return "link.clicked", {
                "link_id": campaign.link_ids[link],
                "url": campaign.url(link + 1),
                "campaign_id": campaign.campaign_id,
            }
        if roll < 0.55:
            product = catalogue.product_popularity.draw(rng)
            viewed.append(product)
            return "product.viewed", {
                "product_id": product.product_id,
                "name": product.name,
                "category": product.category,
                "price": _price(product, persona),
            }
        if roll < 0.9:
            return "page.viewed", _page(self._path(viewed))
        if roll < 0.95:
            return self._custom(persona, viewed)
        app = rng.choice(list(APPS))
        # Apps are installed from phones and tablets, and each app once per customer.
        if roll < 0.98 or persona.device.type == "desktop" or app in persona.apps:
            return "form.completed", {"form_id": FORMS[min(int(rng.expovariate(0.5)), 9)]}
        platforms = APPS[app]
        platform = "ios" if persona.device.os in ("iOS", "iPadOS") else "android"
        if platform not in platforms:
            platform = platforms[0]
        persona.apps.add(app)
        return "app.installed", {"app": app, "platform": platform}

    def _path(self, viewed: list[Product]) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.4:
            product = viewed[-1] if viewed else self._catalogue.product_popularity.draw(rng)
            return f"/category/{product.category}"
        if roll < 0.6 and viewed:
            return f"/product/{viewed[-1].product_id}/reviews"
        if roll < 0.7:
            return "/cart"
        return rng.choice(_INFO_PATHS)

    def _custom(self, persona: Persona, viewed: list[Product]) -> tuple[str, dict[str, Any]]:
        rng = self._rng
        roll = rng.random()
        if roll < 0.5:
            video = self._catalogue.video_popularity.draw(rng)
            return "custom.video_watched", {"video_id": video, "seconds": rng.randint(5, 900)}
        product = viewed[-1] if viewed else self._catalogue.product_popularity.draw(rng)
        if roll < 0.8:
            return "custom.wishlist_added", {"product_id": product.product_id}
        if roll < 0.92:
            return "custom.review_written", {
                "product_id": product.product_id,
                "rating": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
            }
        store = _STORES[int(rng.random() * len(_STORES))]
        return "custom.store_visited", {"store_id": store, "city": persona.city.name}

    def _order(
        self, persona: Persona, line: dict[str, Any], viewed: list[Product]
    ) -> dict[str, Any]:
        rng = self._rng
        lines = [dict(line)]
        seen = {line["product_id"]}
        for product in viewed:
            if product.product_id not in seen and rng.random() < 0.3:
                seen.add(product.product_id)
                lines.append({"product_id": product.product_id, "quantity": 1})
                lines[-1]["price"] = _price(product, persona)
        subtotal = sum(item["quantity"] * item["price"] for item in lines)
        shipping = 0.0 if subtotal > 50 * persona.price_factor else 4.99 * persona.price_factor
        digits = 0 if persona.price_factor >= 50 else 2
        return {
            "order_id": f"o-{persona.profile_id}-{rng.randrange(10**8):08d}",
            "amount": round(subtotal + shipping, digits),
            "currency": persona.currency,
            "products": lines,
        }

    def _context(self, persona: Persona) -> dict[str, Any] | None:
        rng = self._rng
        if rng.random() >= 0.08:
            return None
        if rng.random() < 0.03:
            # A new device: the context updates the persona's device traits (SPEC §3.2).
            persona.device = DEVICES[rng.randrange(len(DEVICES))]
        return {"device": persona.device.as_trait()}
