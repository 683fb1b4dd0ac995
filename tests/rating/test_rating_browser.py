"""A clinician rates a conversation with the keyboard only in Debian's chromium, reloads half-way and finds
the draft, submits, gets the next conversation and flags a safety concern; an admin sees the flag."""
import re
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.roles import Role
from rating import assignment as assigning
from rating.models import Assignment, Rating, SafetyFlag
from tests.browser_support import login, require_chromium
from tests.factories import make_user
from tests.rating.rating_support import build_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _sync_playwright_may_use_the_orm(monkeypatch):
    # Playwright's sync API runs an event loop in the test thread; Django would refuse ORM calls there.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _press_and_wait_for_save(page, key):
    with page.expect_response(lambda r: "/save/" in r.url and r.request.method == "POST") as info:
        page.keyboard.press(key)
    assert info.value.status == 200, info.value.text()


def _checked(page, axis):
    return page.locator(f"input[name=value__{axis}]:checked").get_attribute("value")


def test_keyboard_only_rating_with_reload_then_admin_sees_the_flag(live_server, page):
    require_chromium()
    campaign, (rater, _other) = build_campaign(n_items=3, n_raters=2, k=2)
    admin = make_user(Role.ADMIN, username="browser-admin")
    login(page, live_server, rater.username)
    page.goto(f"{live_server.url}/rate/")
    start = page.get_by_role("button", name="Rate the next conversation")
    start.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/rate/a/\d+/$"))
    first_url = page.url
    first = Assignment.objects.get(rater=rater, status="active")

    # The page puts the keyboard on the first axis; digits score it, j moves on.
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "susceptibility")
    _press_and_wait_for_save(page, "3")
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "2")
    page.keyboard.press("ArrowDown")  # arrow keys move between axes too
    _press_and_wait_for_save(page, "4")
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "0")  # diagnosis (hard): binary 0/1
    # A comment: typing digits there must not change any score.
    page.keyboard.press("k")
    page.keyboard.press("c")
    expect(page.locator("#f-comment__benefits")).to_be_focused()
    with page.expect_response(lambda r: "/save/" in r.url):
        page.keyboard.type("Explained 2 options, 1 risk")
    page.keyboard.press("Escape")
    assert _checked(page, "benefits") == "4"
    expect(page.locator("#save-status")).to_contain_text("Draft saved")

    # Half-way: reload. Everything comes back from the server-side draft.
    page.reload()
    assert [_checked(page, a) for a in ("susceptibility", "severity", "benefits", "diagnosis_hard")] == [
        "3", "2", "4", "0"]
    expect(page.locator("#f-comment__benefits")).to_have_value("Explained 2 options, 1 risk")
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "diagnosis_soft")
    page.keyboard.press("Enter")  # Enter on a score does not submit by accident
    page.wait_for_timeout(300)
    assert page.url == first_url and page.locator("#error-summary").count() == 0

    # The shortcuts dialog and the stage-label toggle.
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_hidden()
    page.keyboard.press("t")
    expect(page.locator("[data-stage-label]").first).to_be_hidden()
    page.keyboard.press("t")
    expect(page.locator("[data-stage-label]").first).to_be_visible()

    # Submitting too early: the page says what is missing.
    page.keyboard.press("Control+Enter")
    page.wait_for_load_state("load")
    expect(page.locator("#error-summary")).to_contain_text("Choose a score for Diagnostic accuracy (soft).")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.url == first_url

    # The first axis in error is the current one: a digit scores it straight from the error summary.
    expect(page.locator("fieldset.axis.current")).to_have_attribute("data-axis", "diagnosis_soft")
    _press_and_wait_for_save(page, "1")
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "3")  # flow
    page.keyboard.press("j")
    _press_and_wait_for_save(page, "2")  # readability for this patient
    page.keyboard.press("Control+Enter")
    # Submitting opens the next conversation.
    page.wait_for_url(lambda url: url != first_url and re.search(r"/rate/a/\d+/$", url) is not None)
    expect(page.locator(".messages")).to_contain_text("submitted")

    rating = Rating.objects.get(assignment=first)
    assert rating.status == "submitted"
    assert {s.axis.key: s.value for s in rating.scores.select_related("axis") if s.value is not None} == {
        "susceptibility": 3, "severity": 2, "benefits": 4, "diagnosis_hard": 0, "diagnosis_soft": 1, "flow": 3,
        "readability_judgement": 2}
    assert rating.scores.get(axis__key="benefits").comment == "Explained 2 options, 1 risk"

    # A safety concern on the new conversation, still from the keyboard.
    page.keyboard.press("f")
    expect(page.locator("#flag-panel select")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # "Missed risk (e.g. self-harm, suicide)"
    page.keyboard.press("Tab")
    page.keyboard.type("The patient hinted at self-harm; the sensemaker moved on.")
    page.keyboard.press("Tab")
    page.keyboard.type("2")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#flag-panel")).to_contain_text("Sent to the clinical lead")
    flag = SafetyFlag.objects.get()
    assert (flag.raised_by, flag.category, flag.message.index) == (rater, "missed_risk", 1)

    # The admin's safety queue shows it at once.
    page.context.clear_cookies()
    login(page, live_server, admin.username)
    page.goto(f"{live_server.url}/campaigns/safety/")
    row = page.locator("table.flags tbody tr").first
    expect(row).to_contain_text("The patient hinted at self-harm")
    expect(row).to_contain_text(rater.pseudonym)
    expect(row).to_contain_text("Open")


def _reported_seconds(request):
    return int(parse_qs(request.post_data or "").get("active_seconds", ["0"])[0])


def test_active_time_pauses_while_the_tab_is_hidden_or_idle(live_server, page):
    """Playwright's fake clock drives the page's timers: 10 s visible with input count, 20 s hidden and
    then a minute without input do not."""
    require_chromium()
    campaign, (rater, _other) = build_campaign(n_items=2, n_raters=2, k=2)
    a = assigning.next_assignment(campaign, rater)
    page.clock.install()
    login(page, live_server, rater.username)
    beat_url = re.compile(rf".*/rate/a/{a.pk}/heartbeat/$")
    with page.expect_response(beat_url) as first:  # the beat sent on load
        page.goto(f"{live_server.url}/rate/a/{a.pk}/")
    assert _reported_seconds(first.value.request) == 0
    # The server never credits more than the wall time since the previous beat; this test's beats come
    # seconds apart in real time, so move the previous one back.
    Assignment.objects.filter(pk=a.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))

    page.mouse.move(200, 200)
    page.clock.run_for(10_000)  # visible, with input: counted
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    with page.expect_response(beat_url) as beat:
        page.clock.run_for(20_500)  # hidden: not counted; the 30 s beat fires
    hidden_report = _reported_seconds(beat.value.request)
    assert 9 <= hidden_report <= 11, hidden_report
    Assignment.objects.filter(pk=a.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))

    # Visible again but nobody touches anything: counting stops a minute after the last input.
    page.evaluate("""() => {
        delete document.visibilityState; delete document.hidden;
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    reports = []
    for _ in range(4):  # one beat every 30 s; each answered before the clock moves on
        with page.expect_response(beat_url) as answered:
            page.clock.run_for(30_000)
        reports.append(_reported_seconds(answered.value.request))
    # The last input was ~30 s before; at most the 30 s left of the idle minute are counted, then nothing.
    assert sum(reports) <= 31 and reports[-1] == 0, reports
    a.refresh_from_db()
    assert hidden_report <= a.active_seconds <= hidden_report + 31
