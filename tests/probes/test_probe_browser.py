"""An admin loads a battery file, runs it against a simulator model and watches the run finish; the
report shows the figure (real worker, real browser)."""
import re

import pytest

from accounts.roles import Role
from probes.models import ProbeRun
from tests.browser_support import login, require_chromium
from tests.factories import make_model, make_user
from tests.worker_support import worker_thread

from .test_probe_files import SHIPPED

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_admin_loads_runs_and_reads_the_report(live_server, page, tmp_path):
    require_chromium()
    admin = make_user(Role.ADMIN, username="probe-admin")
    make_model("simulator/sensemaker-a", name="Sim under test")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SHIPPED.read_text().replace('"age": 41', '"age": 400'))
    with worker_thread(concurrency=4):
        login(page, live_server, admin.username)
        page.goto(f"{live_server.url}/probes/import/")
        page.set_input_files("#id_file", str(bad))
        page.click("button.primary")
        assert "line 7, field 'age'" in page.get_by_test_id("file-errors").inner_text()
        page.set_input_files("#id_file", str(SHIPPED))
        page.click("button.primary")
        page.wait_for_url(re.compile(r"/probes/batteries/\d+/$"))
        page.click("text=Run this battery")
        page.select_option("#id_model", label="Sim under test (simulator/sensemaker-a)")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/probes/runs/\d+/$"))
        # htmx polls the progress fragment until every prompt is answered.
        # The run's status is derived just after its last item, so the page polls until the run has finished.
        page.wait_for_function(
            "document.querySelector('[data-testid=progress-percent]').textContent.trim() === '100%' && "
            "document.querySelector('[data-testid=run-status]').textContent.trim() === 'Done'",
            timeout=120_000)
        assert page.get_by_test_id("run-status").inner_text() == "Done"
        assert page.get_by_test_id("run-simulated").is_visible()
        page.click("text=Report")
        page.wait_for_url(re.compile(r"/results/probes/\d+/$"))
        figure = page.get_by_test_id("probe-figure")
        assert figure.locator("rect.bar").count() == 4  # one bar per condition for the one model
        assert "Sim under test [simulated]" in page.locator("#table-by_condition").inner_text()
    run = ProbeRun.objects.get()
    assert run.items.filter(status="done").count() == 240
