"""The Export form of the Audience page against a real worker: the file it saves is the
segment's members (CSV with the traits asked for, or JSON lines), as the members API lists."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from audience_harness import Audience
from playwright.sync_api import Page, expect
from test_audience_page import enter_token, segment_item, women_in, women_in_north_america

pytestmark = [pytest.mark.kafka, pytest.mark.browser]


def test_export_the_members_of_a_segment(page: Page, audience: Audience, shot: Any) -> None:
    audience.create(women_in_north_america("export-women", "Exported women"))
    expected = women_in("US", "CA")
    enter_token(page)
    segment_item(page, "Exported women").get_by_role(
        "button", name="Exported women", exact=True
    ).click()
    form = page.locator("#members-export")
    expect(form).to_be_visible()
    form.get_by_label("Traits").fill("location.country, age")
    with page.expect_download() as info:
        form.get_by_role("button", name="Export").click()
    download = info.value
    assert download.suggested_filename == "export-women-members.csv"
    path = download.path()
    assert path is not None
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows[0] == ["profile_id", "entered_at", "location.country", "age"]
    assert sorted(r[0] for r in rows[1:]) == sorted(expected)
    assert {r[2] for r in rows[1:]} == {"US", "CA"}
    status, page_of_members = audience.api("GET", "/api/segments/export-women/members?limit=1000")
    assert status == 200
    assert [r[0] for r in rows[1:]] == [m["profile_id"] for m in page_of_members["members"]]
    expect(page.locator("#export-status")).to_have_text(f"Exported {len(expected)} members.")
    shot("01-csv")

    form.get_by_label("Export as").select_option("jsonl")
    with page.expect_download() as info:
        form.get_by_role("button", name="Export").click()
    lines = info.value.path().read_bytes().splitlines()  # type: ignore[union-attr]
    assert [orjson.loads(line)["profile_id"] for line in lines] == [r[0] for r in rows[1:]]

    # A bad trait path: the reason, no file.
    form.get_by_label("Export as").select_option("csv")
    form.get_by_label("Traits").fill("a..b")
    form.get_by_role("button", name="Export").click()
    expect(page.locator("#export-status")).to_contain_text("Export failed: traits:")
    shot("02-refused")
