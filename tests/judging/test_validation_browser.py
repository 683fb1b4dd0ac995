"""A clinician validates a judge's scores with the keyboard only in Debian's chromium: agrees, disagrees
with a corrected score, reloads half-way and finds the draft, and submits with Ctrl+Enter."""
import re

import pytest
from playwright.sync_api import expect

from judging.models import ValidationReview
from rating.models import Assignment
from tests.browser_support import login, require_chromium
from tests.judging.validation_support import build_validation
from tests.rating.test_rating_browser import _press_and_wait_for_save, _sync_playwright_may_use_the_orm  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXES = ["susceptibility", "severity", "benefits", "diagnosis_hard", "diagnosis_soft", "flow", "readability_judgement"]


def _verdict(page, axis):
    checked = page.locator(f"input[name=verdict__{axis}]:checked")
    return checked.get_attribute("value") if checked.count() else None


def _corrected(page, axis):
    checked = page.locator(f"input[name=value__{axis}]:checked")
    return checked.get_attribute("value") if checked.count() else None


def test_keyboard_only_validation_with_reload(live_server, page):
    require_chromium()
    v, (rater, _other) = build_validation(n_items=2, n_raters=2, k=2)
    login(page, live_server, rater.username)
    page.goto(f"{live_server.url}/rate/")
    start = page.get_by_role("button", name="Rate the next conversation")
    start.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/validate/a/\d+/$"))
    first_url = page.url
    first = Assignment.objects.get(rater=rater, status="active")

    # The judge's score, its anchor label and rationale are shown; the cited message is highlighted.
    current = page.locator("fieldset.axis.current")
    expect(current).to_have_attribute("data-axis", "susceptibility")
    expect(current.locator("[data-judge-score]")).to_have_text("1")
    expect(current.locator("[data-rationale]")).to_contain_text("message 2 addresses")
    expect(page.locator("#msg-2")).to_have_class(re.compile(r"\bcited\b"))

    _press_and_wait_for_save(page, "a")  # agree on susceptibility
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "d")  # disagree on severity ...
    expect(page.locator("fieldset.axis.current")).to_have_class(re.compile(r"\bdisagreeing\b"))
    _press_and_wait_for_save(page, "4")  # ... with a corrected score of 4
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "3")  # a digit alone is a disagreement with a correction
    assert _verdict(page, "benefits") == "disagree"
    page.keyboard.press("c")
    expect(page.locator("#f-comment__benefits")).to_be_focused()
    with page.expect_response(lambda r: "/save/" in r.url):
        page.keyboard.type("Two options, 1 risk")
    page.keyboard.press("Escape")
    assert _corrected(page, "benefits") == "3"

    # Half-way: reload. Every verdict, correction and comment comes back from the server-side draft.
    page.reload()
    assert [_verdict(page, a) for a in AXES[:3]] == ["agree", "disagree", "disagree"]
    assert [_corrected(page, a) for a in AXES[:3]] == [None, "4", "3"]
    expect(page.locator("#f-comment__benefits")).to_have_value("Two options, 1 risk")
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "diagnosis_hard")

    # Disagreeing without a correction: Ctrl+Enter is refused with the error beside the axis.
    _press_and_wait_for_save(page, "d")
    page.keyboard.press("j")
    for _ in AXES[4:]:
        _press_and_wait_for_save(page, "a")
        page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert page.url == first_url
    expect(page.locator("#error-summary")).to_contain_text("give the corrected score")
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "diagnosis_hard")
    _press_and_wait_for_save(page, "1")  # binary axis: the judge said 0
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("Disagree with the judge")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: re.search(r"/validate/a/\d+/$", url) is not None and url != first_url)
    expect(page.locator("body")).to_contain_text("submitted")
    review = ValidationReview.objects.get(assignment=first)
    assert review.status == "submitted"
    verdicts = {x.axis.key: (x.agrees, x.corrected_value, x.comment) for x in review.verdicts.select_related("axis")}
    assert verdicts["susceptibility"] == (True, None, "")
    assert verdicts["severity"] == (False, 4.0, "")
    assert verdicts["benefits"] == (False, 3.0, "Two options, 1 risk")
    assert verdicts["diagnosis_hard"] == (False, 1.0, "")
    assert all(verdicts[a][0] is True for a in AXES[4:])
