"""The Audience page's insight views in Chromium against a real worker: member list with trait
columns, size chart, overlap, and the profile view (why, until when, timeline), by keyboard."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from audience_harness import Audience
from playwright.sync_api import Page, expect
from test_audience_page import enter_token

from segstream.timefmt import format_instant

pytestmark = [pytest.mark.kafka, pytest.mark.browser]


def test_members_chart_overlap_and_the_profile_view(
    page: Page, audience: Audience, shot: Any
) -> None:
    audience.create(
        {
            "id": "us",
            "name": "United States",
            "condition": {"trait": "location.country", "op": "eq", "value": "US"},
        }
    )
    audience.create(
        {
            "id": "buyers",
            "name": "Bought this week",
            "condition": {"event": "order.purchased", "within": "3d"},
        }
    )
    now = time.time_ns() // 1000
    purchase = audience.cluster.produce(
        [
            {
                "id": "p00-o1",
                "type": "order.purchased",
                "profile_id": "p00",
                "at": format_instant(now - 60_000_000),
                "properties": {"amount": 30, "currency": "EUR"},
            }
        ]
    )
    # Playwright runs an event loop in this thread: produce from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, purchase).result()
    deadline = time.monotonic() + 30
    while audience.api("GET", "/api/segments/buyers")[1]["members"] != 1:
        assert time.monotonic() < deadline, "p00 never entered buyers"
        time.sleep(0.3)
    enter_token(page)

    # The members of a segment, with trait columns, the size chart and an overlap.
    page.get_by_role("button", name="United States", exact=True).click()
    members = page.locator("#members-list")
    expect(members.get_by_role("button", name="p00", exact=True)).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Members of us per hour"))
    expect(chart).to_be_visible()
    expect(page.locator("#size-caption")).to_contain_text("24 entered")
    page.get_by_label("Trait columns").fill("location.city, age")
    page.get_by_label("Trait columns").press("Enter")
    page.get_by_label("Trait columns").blur()
    row = members.locator("li").filter(has=page.get_by_role("button", name="p00", exact=True))
    expect(row).to_contain_text("City 0")
    expect(row).to_contain_text("18")
    page.get_by_label("Overlap with").select_option("buyers")
    page.get_by_role("button", name="Count overlap").click()
    expect(page.locator("#overlap-result")).to_contain_text(
        "In both: 1 · only us: 23 · only buyers: 0"
    )
    page.get_by_label("Show").select_option("minute")
    expect(page.get_by_role("img", name=re.compile("the last day, per minute"))).to_be_visible()
    shot("01-members-chart-overlap")

    # The profile view from the member list: why, until when, the timeline.
    opener = members.get_by_role("button", name="p00", exact=True)
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Profile")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#profile-status")).to_contain_text("Profile p00")
    buyers = dialog.locator("section.membership").filter(has_text="Bought this week")
    expect(buyers).to_contain_text("member")
    expect(buyers).to_contain_text(
        re.compile(r"Leaves in 3 days .* unless another order\.purchased event comes in")
    )
    buyers.get_by_text("Why").click()
    expect(buyers.locator(".tree")).to_contain_text("✓ true")
    expect(buyers.locator(".tree")).to_contain_text("order.purchased: 1 selected")
    us = dialog.locator("section.membership").filter(has_text="United States")
    expect(us).to_contain_text("Time alone never removes it.")
    timeline = dialog.locator("#profile-timeline")
    expect(timeline.locator("tr")).to_have_count(2)
    expect(timeline).to_contain_text("segment created")
    expect(timeline).to_contain_text("event p00-o1")
    expect(dialog.locator("#profile-traits")).to_contain_text("location.country")
    expect(dialog.locator("#profile-activity")).to_contain_text("order.purchased")
    shot("02-profile-view")

    # Escape closes it and gives the focus back; the header search opens any profile.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    page.get_by_label("Find a profile").fill("p07")
    page.get_by_label("Find a profile").press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#profile-status")).to_contain_text("Profile p07")
    expect(dialog.locator("#profile-memberships")).to_contain_text(
        "In no segment, and time alone brings it into none."
    )
    shot("03-profile-search")
    dialog.get_by_label("Profile id").fill("nobody")
    dialog.get_by_label("Profile id").press("Enter")
    expect(dialog.locator("#profile-status")).to_have_text("There is no profile “nobody”.")
    expect(dialog.locator("#profile-memberships")).to_be_hidden()
    shot("04-profile-not-found")


def test_the_why_of_v12_conditions_in_words(page: Page, audience: Audience, shot: Any) -> None:
    # SPEC §4.4: a sequence, "not followed by" and "member for at least", explained.
    audience.create(
        {
            "id": "abandoned",
            "name": "Abandoned cart",
            "condition": {
                "event": "cart.added",
                "not_followed_by": {"event": "order.purchased", "within": "1m"},
            },
        }
    )
    audience.create(
        {
            "id": "funnel",
            "name": "Viewed then added",
            "condition": {
                "sequence": [{"event": "product.viewed"}, {"event": "cart.added"}],
                "within": "1h",
            },
        }
    )
    audience.create(
        {
            "id": "lingering",
            "name": "Abandoned for a day",
            "condition": {"segment": "abandoned", "for_at_least": "1d"},
        }
    )
    now = time.time_ns() // 1000
    viewed, added = format_instant(now - 300_000_000), format_instant(now - 180_000_000)
    records = audience.cluster.produce(
        [
            {"id": "p01-v1", "type": "product.viewed", "profile_id": "p01", "at": viewed},
            {"id": "p01-c1", "type": "cart.added", "profile_id": "p01", "at": added},
        ]
    )
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, records).result()
    deadline = time.monotonic() + 30
    while audience.api("GET", "/api/segments/abandoned")[1]["members"] != 1:
        assert time.monotonic() < deadline, "p01 never entered abandoned"
        time.sleep(0.3)
    enter_token(page)
    page.get_by_label("Find a profile").fill("p01")
    page.get_by_label("Find a profile").press("Enter")
    dialog = page.get_by_role("dialog", name="Profile")
    expect(dialog.locator("#profile-status")).to_contain_text("Profile p01")
    cart = dialog.locator("section.membership").filter(has_text="Abandoned cart")
    cart.get_by_text("Why").click()
    expect(cart.locator(".tree")).to_contain_text("cart.added: 1 selected kept history (after")
    expect(cart.locator(".tree")).to_contain_text("not followed by order.purchased within 1m")
    expect(cart.locator(".tree")).to_contain_text(f"the one at {added} had none until")
    funnel = dialog.locator("section.membership").filter(has_text="Viewed then added")
    funnel.get_by_text("Why").click()
    expect(funnel.locator(".tree")).to_contain_text(
        f"product.viewed (1 selected, matched at {viewed}) → cart.added (1 selected, matched at"
    )
    lingering = dialog.locator("section.membership").filter(has_text="Abandoned for a day")
    expect(lingering).to_contain_text("Enters")
    lingering.get_by_text("Why").click()
    expect(lingering.locator(".tree")).to_contain_text("needs at least 1d; true from")
    shot("05-v12-why")
