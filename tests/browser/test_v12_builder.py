"""The builder and SPEC §4.4 (v1.2): every construct loads and saves unchanged, and the sequence
editor, "then not … within", "member of … for at least" and the new operators are built from
the page's controls (headless Chromium against a real worker)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from audience_harness import Audience
from playwright.sync_api import Page, expect
from test_audience_page import (
    action,
    choose_type,
    enter_token,
    node,
    open_editor,
    row,
    women_in_north_america,
)

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

EVERY_V12: dict[str, Any] = {
    "and": [
        {
            "sequence": [
                {"event": "product.viewed"},
                {
                    "event": "cart.added",
                    "where": [{"property": "price", "op": "gt", "value": 10}],
                },
                {"event": "custom.checkout_started", "where": []},
                {"event": "order.purchased"},
            ],
            "within": "7d",
        },
        {
            "event": "cart.added",
            "within": "7d",
            "not_followed_by": {
                "event": "order.purchased",
                "where": [{"property": "amount", "op": "gte", "value": 1}],
                "within": "1h",
            },
        },
        {"segment": "v12-base", "for_at_least": "30d"},
        {"trait": "custom.renewal_date", "op": "within_next", "value": "14d"},
        {"trait": "birthdate", "op": "anniversary_within_next", "value": "7d"},
        {"trait": "custom.signup_date", "op": "anniversary_within_last", "value": "2w"},
        {"trait": "custom.email", "op": "matches", "value": "@(gmail|yahoo)\\.com$"},
        {
            "trait": "location.city",
            "op": "matches",
            "value": "^(new|san) ",
            "ignore_case": True,
        },
        {
            "sequence": [{"event": "page.viewed"}, {"event": "page.viewed"}],
            "within": {"after": "2026-01-01"},
        },
        {
            "event": "link.clicked",
            "where": [
                {"property": "url", "op": "matches", "value": "/promo/(spring|summer)"},
                {"property": "sent_at", "op": "within_next", "value": "1d"},
            ],
        },
    ]
}


def shown_json(page: Page) -> Any:
    text = page.locator("#condition-json").text_content()
    assert text is not None
    return orjson.loads(text)


def test_every_v12_construct_loads_saves_and_is_built_from_the_controls(
    page: Page, audience: Audience, shot: Any
) -> None:
    audience.create(women_in_north_america("v12-base", "V12 base"))
    audience.create({"id": "v12-everything", "name": "V12 everything", "condition": EVERY_V12})
    enter_token(page)
    open_editor(page, "V12 everything")
    expect(page.locator("#preview-matching")).to_contain_text("Matching now:")
    assert shown_json(page) == EVERY_V12
    # Each construct is drawn with its controls.
    sequence = node(page, "condition.and[0]")
    expect(sequence.get_by_label("Step 1", exact=True)).to_have_value("product.viewed")
    expect(sequence.get_by_label("Step 3", exact=True)).to_have_value("custom")
    expect(sequence.get_by_label("Step 3: action name")).to_have_value("checkout_started")
    expect(
        node(page, "condition.and[0].sequence[1].where[0]").get_by_label("Property")
    ).to_have_value("price")
    expect(sequence.get_by_label("In the last: how many")).to_have_value("7")
    follow = node(page, "condition.and[1].not_followed_by")
    expect(follow.get_by_label("Then not", exact=True)).to_have_value("order.purchased")
    expect(follow.get_by_label("within: how many")).to_have_value("1")
    expect(follow.get_by_label("within: unit")).to_have_value("h")
    expect(node(page, "condition.and[1]").get_by_label("How often or how much")).to_be_hidden()
    tenure = row(page, "condition.and[2]")
    expect(tenure.get_by_label("for at least", exact=True)).to_be_checked()
    expect(tenure.get_by_label("Member for at least: how many")).to_have_value("30")
    expect(row(page, "condition.and[4]").get_by_label("Operator")).to_have_value(
        "anniversary_within_next"
    )
    expect(row(page, "condition.and[4]").get_by_label("Value: unit")).to_have_value("d")
    expect(row(page, "condition.and[7]").get_by_label("ignore case")).to_be_checked()
    expect(row(page, "condition.and[6]").get_by_label("Value")).to_have_value(
        "@(gmail|yahoo)\\.com$"
    )
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Nothing to save")
    shot("01-loaded")

    # Built from the controls: a sequence of three steps with a filter and a window.
    action(page, "condition.and[9]", "And").click()
    choose_type(page, "condition.and[10]", "sequence")
    built = node(page, "condition.and[10]")
    built.get_by_role("button", name="Add step").click()
    built.get_by_label("Step 3", exact=True).select_option("order.purchased")
    node(page, "condition.and[10].sequence[1]").get_by_role(
        "button", name="Add property filter"
    ).click()
    flt = row(page, "condition.and[10].sequence[1].where[0]")
    flt.get_by_label("Property").fill("price")
    flt.get_by_label("Operator").select_option("gte")
    flt.get_by_label("Value").fill("20")
    built.get_by_label("When").select_option("last")
    built.get_by_label("In the last: how many").fill("3")
    assert shown_json(page)["and"][10] == {
        "sequence": [
            {"event": "product.viewed"},
            {"event": "cart.added", "where": [{"property": "price", "op": "gte", "value": 20}]},
            {"event": "order.purchased"},
        ],
        "within": "3d",
    }
    # "Then not … within" on an event condition.
    action(page, "condition.and[10]", "And").click()
    choose_type(page, "condition.and[11]", "event:cart.added")
    cart = node(page, "condition.and[11]")
    cart.get_by_role("button", name="Then not… (did not follow within)").click()
    then_not = node(page, "condition.and[11].not_followed_by")
    then_not.get_by_label("within: how many").fill("2")
    then_not.get_by_label("within: unit").select_option("h")
    assert shown_json(page)["and"][11] == {
        "event": "cart.added",
        "not_followed_by": {"event": "order.purchased", "within": "2h"},
    }
    # "Member of … for at least" and an upcoming anniversary.
    action(page, "condition.and[11]", "And").click()
    choose_type(page, "condition.and[12]", "segment")
    member = row(page, "condition.and[12]")
    member.get_by_label("Segment").select_option("v12-base")
    member.get_by_label("for at least", exact=True).check()
    member.get_by_label("Member for at least: how many").fill("90")
    action(page, "condition.and[12]", "And").click()
    choose_type(page, "condition.and[13]", "trait:birthdate")
    birthday = row(page, "condition.and[13]")
    birthday.get_by_label("Operator").select_option("anniversary_within_next")
    birthday.get_by_label("Value: how many").fill("7")
    assert shown_json(page)["and"][12:] == [
        {"segment": "v12-base", "for_at_least": "90d"},
        {"trait": "birthdate", "op": "anniversary_within_next", "value": "7d"},
    ]
    shot("02-built")
    page.get_by_role("button", name="Save Changes").click()
    # The outcome itself: "Saving…" (or the earlier "Nothing to save") holds no "Not saved"
    # either, and under load the GET below then read the version before this save.
    expect(page.locator("#save-status")).to_contain_text("Saved as a new version", timeout=30_000)
    # The API serves definitions as its catalogue has read them from the segments topic.
    deadline = time.monotonic() + 30
    while True:
        status, body = audience.api("GET", "/api/segments/v12-everything")
        assert status == 200, body
        if len(body["condition"]["and"]) == 14 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["condition"]["and"][:10] == EVERY_V12["and"]
    assert len(body["condition"]["and"]) == 14
