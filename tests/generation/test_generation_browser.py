"""An admin launches a job in the browser and watches the progress bar reach 100% (real worker)."""
import re

import pytest

from accounts.roles import Role
from generation.models import GenerationJob
from tests.browser_support import login, require_chromium
from tests.factories import make_case, make_model, make_user
from tests.worker_support import worker_thread

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_admin_launches_a_job_and_watches_it_finish(live_server, page):
    require_chromium()
    admin = make_user(Role.ADMIN, username="browser-admin")
    cases = [make_case(), make_case()]
    make_model("simulator/patient", name="Sim patient")
    make_model("simulator/helper", name="Sim helper")
    make_model("simulator/sensemaker-a", name="Sim under test")
    with worker_thread(concurrency=4):
        login(page, live_server, admin.username)
        page.goto(f"{live_server.url}/generation/jobs/new/")
        page.fill("#id_name", "Browser job")
        page.select_option("#id_sensemaker_model", label="Sim under test (simulator/sensemaker-a)")
        page.select_option("#id_patient_model", label="Sim patient (simulator/patient)")
        page.select_option("#id_helper_model", label="Sim helper (simulator/helper)")
        # No case chosen: htmx brings the form back with the error, in place, without a page load.
        page.evaluate("window.__notReloaded = true")
        page.click("button[type=submit]")
        page.get_by_test_id("launch-errors").wait_for()
        assert page.evaluate("window.__notReloaded === true")
        assert "This field is required" in page.locator(".field-cases").inner_text()
        assert page.input_value("#id_name") == "Browser job", "what was typed is kept"
        for case in cases:
            page.check(f"input[name=cases][value='{case.pk}']")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/generation/jobs/\d+/$"))  # htmx's HX-Redirect to the job's page
        # htmx polls the progress fragment; the page itself is never reloaded.
        page.wait_for_function(
            "document.querySelector('[data-testid=progress-percent]').textContent.trim() === '100%'",
            timeout=90_000,
        )
        bar = page.get_by_role("progressbar")
        assert bar.get_attribute("aria-valuenow") == "100"
        assert page.get_by_test_id("job-status").inner_text() == "Done"
    job = GenerationJob.objects.get(name="Browser job")
    # The default persona grid: 2 cases x 5 dominant traits x 2 literacy levels.
    assert job.conversations.filter(status="done").count() == 20
