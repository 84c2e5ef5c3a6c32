"""The Audience page in headless Chromium against a real worker: create, edit, delete, errors."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from audience_harness import PROFILES, TOKEN, Audience, profile_traits
from playwright.sync_api import Locator, Page, expect

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

SLOW = 30_000  # ms: backfills and polls


def members_of(predicate: Any) -> list[str]:
    """The ids of the generated profiles whose traits satisfy `predicate`."""
    return [f"p{i:02d}" for i in range(PROFILES) if predicate(profile_traits(i))]


def women_in(*countries: str) -> list[str]:
    return members_of(lambda t: t["gender"] == "female" and t["location"]["country"] in countries)


def women_in_north_america(segment_id: str, name: str) -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": name,
        "condition": {
            "and": [
                {"trait": "gender", "op": "eq", "value": "female"},
                {
                    "or": [
                        {"trait": "location.country", "op": "eq", "value": "US"},
                        {"trait": "location.country", "op": "eq", "value": "CA"},
                    ]
                },
            ]
        },
    }


def node(page: Page, path: str) -> Locator:
    """The condition node at a JSON path, e.g. `condition.and[1]`."""
    return page.locator(f'[data-path="{path}"]')


def row(page: Page, path: str) -> Locator:
    """The controls of the leaf condition at `path` (not those of nested nodes)."""
    return node(page, path).locator(":scope > .leaf-row")


def action(page: Page, path: str, name: str) -> Locator:
    """An And / Or / Not / Remove button of the node at `path`."""
    return (
        node(page, path)
        .locator(":scope > .node-actions")
        .get_by_role("button", name=name, exact=True)
    )


def choose_type(page: Page, path: str, choice: str) -> None:
    row(page, path).get_by_label("Condition type").select_option(choice)


def enter_token(page: Page) -> None:
    page.get_by_label("API token").fill(TOKEN)


def segment_item(page: Page, name: str) -> Locator:
    return page.locator(".segment").filter(has=page.get_by_role("button", name=name, exact=True))


def open_editor(page: Page, name: str) -> None:
    """Hover the segment's title, then click the edit icon that appears."""
    item = segment_item(page, name)
    item.get_by_role("button", name=name, exact=True).hover()
    edit = item.get_by_role("button", name=f"Edit {name}")
    expect(edit).to_have_css("opacity", "1")
    edit.click()
    expect(page.locator("#editor")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)


def test_create_a_segment_with_and_and_or(page: Page, audience: Audience, shot: Any) -> None:
    enter_token(page)
    expect(page.get_by_role("heading", name="Audience")).to_be_visible()
    page.get_by_role("button", name="New Segment").click()
    # The first thing asked: the type of condition (it has the focus).
    expect(row(page, "condition").get_by_label("Condition type")).to_be_focused()
    page.get_by_label("Name", exact=True).fill("Women in North America")
    expect(page.get_by_label("Id", exact=True)).to_have_value("women-in-north-america")
    choose_type(page, "condition", "trait:gender")
    row(page, "condition").get_by_label("Value").fill("female")
    action(page, "condition", "And").click()
    choose_type(page, "condition.and[1]", "trait:country")
    row(page, "condition.and[1]").get_by_label("Value").select_option("US")
    action(page, "condition.and[1]", "Or").click()
    choose_type(page, "condition.and[1].or[1]", "trait:country")
    row(page, "condition.and[1].or[1]").get_by_label("Value").select_option("CA")
    expected = women_in("US", "CA")
    expect(page.locator("#preview-matching")).to_have_text(
        f"Matching now: {len(expected)} of {PROFILES} profiles."
    )
    shot("01-draft-with-preview")

    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Segment created (version 1)")
    status, stored = audience.api("GET", "/api/segments/women-in-north-america")
    assert status == 200, stored
    wanted = women_in_north_america("women-in-north-america", "Women in North America")
    assert stored["condition"] == wanted["condition"]
    # The list shows it with its live count; the members pane fills in.
    item = segment_item(page, "Women in North America")
    expect(item.locator(".count")).to_have_text(f"{len(expected)} members", timeout=SLOW)
    expect(item.locator(".status")).to_have_text("ready", timeout=SLOW)
    expect(page.locator("#members-list li")).to_have_count(len(expected), timeout=SLOW)
    shown = page.locator("#members-list li").all_inner_texts()
    assert sorted(shown) == expected
    shot("02-saved-members")


def test_edit_shows_enter_leave_and_the_list_changes(
    page: Page, audience: Audience, shot: Any
) -> None:
    audience.create(women_in_north_america("edit-me", "Edit me"))
    enter_token(page)
    before = women_in("US", "CA")
    expect(segment_item(page, "Edit me").locator(".count")).to_have_text(
        f"{len(before)} members", timeout=SLOW
    )
    open_editor(page, "Edit me")
    expect(page.get_by_label("Id", exact=True)).to_have_value("edit-me")
    expect(page.locator("#preview-changes")).to_have_text("Would enter: 0 · would leave: 0")
    # Canada -> Brazil.
    row(page, "condition.and[1].or[1]").get_by_label("Value").select_option("BR")
    after = women_in("US", "BR")
    enter = len(set(after) - set(before))
    leave = len(set(before) - set(after))
    assert enter and leave and len(after) != len(before)
    expect(page.locator("#preview-changes")).to_have_text(
        f"Would enter: {enter} · would leave: {leave}"
    )
    expect(page.locator("#preview-matching")).to_have_text(
        f"Matching now: {len(after)} of {PROFILES} profiles."
    )
    page.get_by_label("Name", exact=True).fill("Women in US or Brazil")
    shot("01-preview-enter-leave")

    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Saved as a new version (version 2)")
    item = segment_item(page, "Women in US or Brazil")
    expect(item.locator(".count")).to_have_text(f"{len(after)} members", timeout=SLOW)
    expect(segment_item(page, "Edit me")).to_have_count(0)
    expect(page.locator("#members-list li")).to_have_count(len(after), timeout=SLOW)
    assert sorted(page.locator("#members-list li").all_inner_texts()) == after
    # Saved again with no change: nothing new.
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Nothing to save")
    shot("02-saved-list-changed")


def test_delete_through_the_dialog(page: Page, audience: Audience, shot: Any) -> None:
    audience.create(women_in_north_america("delete-me", "Delete me"))
    enter_token(page)
    # With the keyboard alone: the edit icon shows when focus reaches it.
    item = segment_item(page, "Delete me")
    item.get_by_role("button", name="Delete me", exact=True).focus()
    page.keyboard.press("Tab")
    edit = item.get_by_role("button", name="Edit Delete me")
    expect(edit).to_be_focused()
    expect(edit).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Delete me")
    trash = page.get_by_role("button", name="Delete segment")
    trash.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete me")
    expect(dialog).to_contain_text("does not delete the customer profiles")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    shot("01-confirmation-dialog")
    # Escape cancels: nothing happens, the focus is back on the trash icon.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(trash).to_be_focused()
    assert audience.api("GET", "/api/segments/delete-me")[0] == 200
    trash.click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#editor")).to_be_hidden()
    expect(segment_item(page, "Delete me")).to_have_count(0)
    assert audience.api("GET", "/api/segments/delete-me")[0] == 404
    # The profiles stay.
    status, profile = audience.api("GET", "/api/profiles/p00")
    assert status == 200, profile
    shot("02-deleted")


def test_a_validation_error_is_shown_at_its_condition(
    page: Page, audience: Audience, shot: Any
) -> None:
    enter_token(page)
    page.get_by_role("button", name="New Segment").click()
    page.get_by_label("Name", exact=True).fill("Big spenders")
    choose_type(page, "condition", "trait:gender")
    row(page, "condition").get_by_label("Value").fill("female")
    action(page, "condition", "And").click()
    choose_type(page, "condition.and[1]", "event:order.purchased")
    purchase = node(page, "condition.and[1]")
    purchase.get_by_label("How often or how much").select_option("sum")
    purchase.get_by_label("Amount").fill("100")
    purchase.get_by_label("When").select_option("last")
    purchase.get_by_label("In the last: how many").fill("9999")
    # The live preview already says what is wrong, and where.
    errors = purchase.locator(":scope > .errors")
    expect(errors).to_contain_text("longer than the 365d history kept")
    expect(purchase.get_by_label("In the last: how many")).to_have_attribute("aria-invalid", "true")
    expect(node(page, "condition.and[0]").locator(".errors")).to_be_hidden()
    expect(page.locator("#preview-matching")).to_contain_text("1 problem is marked")
    # Saving is refused with the same error at the same place; nothing is written.
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Not saved")
    expect(errors).to_contain_text("longer than the 365d history kept")
    assert audience.api("GET", "/api/segments/big-spenders")[0] == 404
    errors.scroll_into_view_if_needed()
    shot("01-error-at-condition")
    # Fixed: the error goes away and the preview counts again.
    purchase.get_by_label("In the last: how many").fill("30")
    expect(errors).to_be_hidden()
    expect(page.locator("#preview-matching")).to_have_text(
        f"Matching now: 0 of {PROFILES} profiles."
    )


# Every node kind (and, or, not, trait, event with where/within/measure, segment) and every
# operator of SPEC §4, in the forms the builder offers for them.
EVERYTHING: dict[str, Any] = {
    "and": [
        {"trait": "gender", "op": "eq", "value": "female", "ignore_case": True},
        {"trait": "gender", "op": "neq", "value": "male"},
        {"trait": "location.country", "op": "in", "value": ["US", "CA", "BR"]},
        {"trait": "location.country", "op": "not_in", "value": ["FR"]},
        {"trait": "age", "op": "gt", "value": 17},
        {"trait": "age", "op": "gte", "value": 18},
        {"trait": "age", "op": "lt", "value": 99.5},
        {"trait": "age", "op": "lte", "value": 99},
        {"trait": "age", "op": "between", "value": [18, 120]},
        {"trait": "age", "op": "exists"},
        {"trait": "mobile_operator", "op": "not_exists"},
        {"trait": "location.city", "op": "contains", "value": "ity"},
        {"trait": "location.city", "op": "starts_with", "value": "Ci", "ignore_case": False},
        {"trait": "location.city", "op": "ends_with", "value": "Y 0", "ignore_case": True},
        {"trait": "custom.signup", "op": "before", "value": "2030-01-01"},
        {"trait": "custom.signup", "op": "after", "value": "2001-02-03T04:05:06Z"},
        {"trait": "custom.seen", "op": "within_last", "value": "30d"},
        {"trait": "custom.seen", "op": "more_than_ago", "value": "2w"},
        {"trait": "location", "op": "near", "value": {"lat": 40.4, "lon": -3.7, "km": 50}},
        {"trait": "custom.vip", "op": "eq", "value": True},
        {"trait": "custom.tags", "op": "contains", "value": 7},
        {"trait": "device.type", "op": "in", "value": ["mobile", "tablet"]},
        {"trait": "subscription_source", "op": "eq", "value": "qr_code"},
        {"not": {"segment": "everything-base"}},
        {
            "or": [
                {
                    "event": "order.purchased",
                    "where": [
                        {"property": "products.product_id", "op": "in", "value": ["sku-1"]},
                        {"property": "currency", "op": "eq", "value": "usd", "ignore_case": True},
                    ],
                    "within": "30d",
                    "sum": "amount",
                    "op": "between",
                    "value": [10, 500],
                },
                {
                    "event": "page.viewed",
                    "within": {"after": "2025-01-01", "before": "2026-12-01T00:00:00Z"},
                    "count": {"op": "gte", "value": 2},
                },
                {"event": "cart.added", "avg": "price", "op": "gt", "value": 5},
                {"event": "product.viewed", "min": "price", "op": "lt", "value": 3},
                {"event": "form.completed", "max": "score", "op": "neq", "value": 1},
                {"event": "app.installed", "count": {"op": "between", "value": [1, 3]}},
                {"event": "custom.referred_friend", "within": {"after": "2025-06-01"}},
                {"not": {"not": {"event": "link.clicked", "where": []}}},
            ]
        },
    ]
}


def test_every_node_and_operator_loads_and_saves_unchanged(
    page: Page, audience: Audience, shot: Any
) -> None:
    audience.create(women_in_north_america("everything-base", "Everything base"))
    audience.create({"id": "everything", "name": "Everything", "condition": EVERYTHING})
    enter_token(page)
    open_editor(page, "Everything")
    expect(page.locator("#preview-matching")).to_contain_text("Matching now:")
    shown = page.locator("#condition-json").text_content()
    assert shown is not None and orjson.loads(shown) == EVERYTHING
    # Each node is drawn with the controls of its kind.
    expect(row(page, "condition.and[18]").get_by_label("within km")).to_have_value("50")
    expect(row(page, "condition.and[16]").get_by_label("Value: unit")).to_have_value("d")
    expect(node(page, "condition.and[23].not").get_by_label("Segment")).to_have_value(
        "everything-base"
    )
    purchase = node(page, "condition.and[24].or[0]")
    expect(purchase.get_by_label("How often or how much")).to_have_value("sum")
    expect(node(page, "condition.and[24].or[0].where[0]").get_by_label("Property")).to_have_value(
        "products.product_id"
    )
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#save-status")).to_contain_text("Nothing to save")
    shot("01-loaded")
    # Built from the UI: Not around a condition, then a segment reference with And.
    action(page, "condition.and[1]", "Not").click()
    expect(node(page, "condition.and[1]")).to_have_class(re.compile(r"\bnot\b"))
    action(page, "condition.and[1].not", "And").click()
    choose_type(page, "condition.and[1].not.and[1]", "segment")
    row(page, "condition.and[1].not.and[1]").get_by_label("Segment").select_option(
        "everything-base"
    )
    shown = page.locator("#condition-json").text_content()
    assert shown is not None
    assert orjson.loads(shown)["and"][1] == {
        "not": {"and": [EVERYTHING["and"][1], {"segment": "everything-base"}]}
    }


def test_the_page_asks_for_the_token_before_it_shows_any_data(
    page: Page, audience: Audience
) -> None:
    audience.create(women_in_north_america("token-gate", "Token gate"))
    # Reads need the token too: no segment (and no member) is shown without it.
    expect(page.locator("#connection")).to_contain_text("needs an API token", timeout=SLOW)
    expect(segment_item(page, "Token gate")).to_have_count(0)
    page.get_by_label("API token").fill("not-" + TOKEN)
    expect(page.locator("#connection")).to_contain_text("refuses this API token", timeout=SLOW)
    enter_token(page)
    expect(segment_item(page, "Token gate")).to_have_count(1, timeout=SLOW)
    expect(page.locator("#connection")).to_have_text("")
