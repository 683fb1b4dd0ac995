"""A clinician labels a conversation on the MHDash-style categorical rubric with the keyboard only, in
Debian's chromium: digits choose categories by position, the draft survives a reload, Ctrl+Enter submits."""
import re

import pytest
from playwright.sync_api import expect

from rating.models import Rating
from rating.rubric_files import RUBRIC_DIR, load_rubric_file
from tests.browser_support import login, require_chromium
from tests.rating.rating_support import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _sync_playwright_may_use_the_orm(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _press_and_wait_for_save(page, key):
    with page.expect_response(lambda r: "/save/" in r.url and r.request.method == "POST") as info:
        page.keyboard.press(key)
    assert info.value.status == 200, info.value.text()


def _checked(page, axis):
    return page.locator(f"input[name=value__{axis}]:checked").get_attribute("value")


def test_categories_are_chosen_with_digits_and_submitted_from_the_keyboard(live_server, page):
    require_chromium()
    rubric, _ = load_rubric_file(RUBRIC_DIR / "mhdash-v1.json")
    campaign, (rater, _other) = build_campaign(n_items=2, n_raters=2, k=2, rubric=rubric)
    login(page, live_server, rater.username)
    page.goto(f"{live_server.url}/rate/")
    page.get_by_role("button", name="Rate the next conversation").click()
    page.wait_for_url(re.compile(r".*/rate/a/\d+/$"))
    first_url = page.url

    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "dialog_intent")
    _press_and_wait_for_save(page, "2")  # emotional_support, the second category
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "4")  # concern type: self_harm
    page.keyboard.press("j")
    page.keyboard.press("9")  # risk level has five categories: 9 chooses nothing
    page.wait_for_timeout(200)
    assert page.locator("input[name=value__risk_level]:checked").count() == 0
    _press_and_wait_for_save(page, "4")  # high
    _press_and_wait_for_save(page, "5")  # changed mind: imminent
    expect(page.locator("input[name=value__risk_level][value=imminent]")).to_be_focused()

    # The shortcuts dialog says how digits work on categories.
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_contain_text("the category with that number")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_hidden()

    page.reload()
    assert [_checked(page, a) for a in ("dialog_intent", "concern_type", "risk_level")] == [
        "emotional_support", "self_harm", "imminent"]
    # Every axis is answered, so the page starts on the first; j moves on, digits relabel.
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "dialog_intent")
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "1")  # concern type: none... and back
    _press_and_wait_for_save(page, "4")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: url != first_url and re.search(r"/rate/a/\d+/$", url) is not None)

    rating = Rating.objects.get(assignment__rater=rater, status="submitted")
    assert {s.axis.key: s.category for s in rating.scores.select_related("axis")} == {
        "dialog_intent": "emotional_support", "concern_type": "self_harm", "risk_level": "imminent"}
    assert all(s.value is None for s in rating.scores.all())
