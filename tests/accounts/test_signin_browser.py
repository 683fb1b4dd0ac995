"""What a person sees in the browser (Debian chromium): the lockout explained on the login page, the
right password refused while locked, in again after an admin's unlock."""
import pytest
from django.test import override_settings
from playwright.sync_api import expect

from accounts import throttling
from accounts.roles import Role
from tests.browser_support import login, require_chromium
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _sync_playwright_may_use_the_orm(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_lockout_message_in_the_browser_then_unlock(live_server, page):
    require_chromium()
    user = make_user(Role.RESEARCHER, username="browser-locked")
    for _ in range(3):
        login(page, live_server, user.username, "not-my-password")
    login(page, live_server, user.username, PASSWORD)
    expect(page.locator("#locked-out")).to_contain_text("Too many failed sign-in attempts")
    assert "/accounts/login/" in page.url
    expect(page.locator("#sso-login")).to_have_count(0)  # SSO is off by default: no button

    throttling.unlock(make_user(Role.ADMIN), username=user.username)
    login(page, live_server, user.username, PASSWORD)
    expect(page.locator("h1")).to_contain_text("Research overview")
