"""The destinations panel of the Audience page against a real worker: add, refuse, edit, remove."""

from __future__ import annotations

from typing import Any

import pytest
from audience_harness import Audience
from playwright.sync_api import Page, expect
from test_audience_page import enter_token, women_in_north_america

pytestmark = [pytest.mark.kafka, pytest.mark.browser]


def test_create_change_and_remove_a_destination(page: Page, audience: Audience, shot: Any) -> None:
    audience.create(women_in_north_america("na-women", "North American women"))
    enter_token(page)
    expect(page.locator("#segment-list")).to_contain_text("North American women")
    page.get_by_role("button", name="Destinations").click()
    dialog = page.get_by_role("dialog", name="Webhook destinations")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#destination-list")).to_contain_text("No destinations yet.")

    # A host outside the operator's allow-list is refused, with the reason.
    dialog.get_by_label("Destination id").fill("crm")
    dialog.get_by_label("URL").fill("https://evil.example.org/hook")
    dialog.get_by_label("Secret name").fill("SEGSTREAM_WEBHOOK_SECRET_CRM")
    dialog.get_by_role("button", name="Save destination").click()
    expect(dialog.locator("#destination-errors")).to_contain_text(
        "not in the operator's allow-list"
    )

    dialog.get_by_label("URL").fill("https://hooks.example.com/segstream")
    dialog.get_by_label("All segments").uncheck()
    dialog.get_by_label("Segments to follow").select_option("na-women")
    dialog.get_by_label("Left").uncheck()
    dialog.get_by_label("Events per request (most)").fill("50")
    dialog.get_by_role("button", name="Save destination").click()
    expect(dialog.locator("#destinations-status")).to_have_text(
        "Destination “crm” created (version 1)."
    )
    row = dialog.locator('#destination-list tr[data-id="crm"]')
    expect(row).to_contain_text("https://hooks.example.com/segstream")
    expect(row).to_contain_text("na-women")
    dialog.evaluate("element => element.scrollTo(0, 0)")
    shot("01-created")

    status, stored = audience.api("GET", "/api/destinations/crm")
    assert status == 200, stored
    assert stored["segments"] == ["na-women"] and stored["transitions"] == ["entered"]
    assert stored["batch"] == {"max_events": 50, "max_linger_ms": 1000}
    assert stored["secret"] == {"env": "SEGSTREAM_WEBHOOK_SECRET_CRM"}

    # Edit: the form fills from the row; both changes again.
    row.get_by_role("button", name="Edit destination crm").click()
    expect(dialog.get_by_label("URL")).to_have_value("https://hooks.example.com/segstream")
    dialog.get_by_label("Left").check()
    dialog.get_by_role("button", name="Save destination").click()
    expect(dialog.locator("#destinations-status")).to_have_text(
        "Destination “crm” changed (version 2)."
    )
    assert audience.api("GET", "/api/destinations/crm")[1]["transitions"] == ["entered", "left"]

    row.get_by_role("button", name="Remove destination crm").click()
    expect(dialog.locator("#destinations-status")).to_contain_text("removed")
    expect(dialog.locator("#destination-list")).to_contain_text("No destinations yet.")
    assert audience.api("GET", "/api/destinations/crm")[0] == 404
    shot("02-removed")
