"""Admins launch and watch judge runs from the campaign page: the htmx panel, errors in place, the run
page with live progress, failures, Cancel and Retry; then the same in a real browser with a real worker."""
import re

import pytest
from django.urls import reverse

from accounts.roles import Role
from generation.models import ModelConfig
from judging import services
from judging.models import JudgeRun
from tests.browser_support import login, require_chromium
from tests.factories import make_user
from tests.worker_support import worker_thread

from .helpers import campaign_of, http_judge, launch, simulator_judge

HTMX = {"HX-Request": "true"}


@pytest.mark.django_db
def test_the_campaign_page_embeds_the_judge_panel_for_admins_only(client):
    campaign = campaign_of(1)
    panel = reverse("judging:campaign_panel", args=[campaign.pk])
    client.force_login(make_user(Role.RESEARCHER))
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert panel not in page, "researchers read campaign progress, but judge runs are for admins"
    assert client.get(panel).status_code == 403
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert f'hx-get="{panel}" hx-trigger="load"' in page
    fragment = client.get(panel, headers=HTMX).content.decode()
    assert "<html" not in fragment and 'id="judge-launch-form"' in fragment
    assert "No judge run on this campaign" in fragment


@pytest.mark.django_db
def test_the_panels_runs_table_polls_while_a_run_is_unfinished_and_stops_once_all_are(client):
    from judging.models import JudgeItem

    campaign = campaign_of(2)
    runs_url = reverse("judging:campaign_runs", args=[campaign.pk])
    client.force_login(make_user(Role.ADMIN))
    panel_url = reverse("judging:campaign_panel", args=[campaign.pk])
    assert f'hx-get="{runs_url}"' not in client.get(panel_url).content.decode()
    run = launch(simulator_judge(), campaign, enqueue_tasks=False)
    panel = client.get(panel_url, headers=HTMX).content.decode()
    assert f'hx-get="{runs_url}" hx-trigger="every 3s"' in panel
    table = client.get(runs_url, headers=HTMX).content.decode()
    assert "judge-launch-form" not in table and "0% (0 / 2)" in table and 'hx-trigger="every 3s"' in table
    JudgeItem.objects.filter(run=run).update(status="done")
    table = client.get(runs_url, headers=HTMX).content.decode()
    assert "100% (2 / 2)" in table and "hx-trigger" not in table, "a finished table stops polling"


@pytest.mark.django_db
def test_launch_errors_come_back_in_place_and_nothing_is_launched(client):
    campaign = campaign_of(1)
    judge = simulator_judge()
    client.force_login(make_user(Role.ADMIN))
    url = reverse("judging:launch", args=[campaign.pk])
    response = client.post(url, {"judge_model": judge.pk, "samples": "0", "seed": "1", "max_concurrent_calls": "999"},
                           headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'data-testid="judge-launch-errors"' in body
    assert "greater than or equal to 1" in body and "less than or equal to 256" in body
    # A service-level refusal (this campaign has nothing to judge) shows at the top of the form.
    empty = campaign_of(0)
    response = client.post(reverse("judging:launch", args=[empty.pk]),
                           {"judge_model": judge.pk, "samples": "1", "seed": "0", "max_concurrent_calls": "4"})
    assert response.status_code == 400
    assert "no finished conversation with messages to judge" in response.content.decode()
    assert not JudgeRun.objects.exists()
    response = client.post(url, {"judge_model": judge.pk, "samples": "2", "seed": "9", "max_concurrent_calls": "4"},
                           headers=HTMX)
    run = JudgeRun.objects.get()
    assert response.headers["HX-Redirect"] == reverse("judging:run_detail", args=[run.pk])
    assert run.items.count() == 2 and run.samples == 2 and run.seed == 9 and run.campaign == campaign


@pytest.mark.django_db(transaction=True)
def test_the_run_page_shows_failures_progress_and_the_actions(client, fake_llm, fast_retries):
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    fake_llm.push_faults("bad_content", "bad_content", "bad_content")
    run = launch(http_judge(fake_llm), campaign_of(2), enqueue_tasks=False)
    services.run_inline(run, threads=1)
    page = client.get(reverse("judging:run_detail", args=[run.pk])).content.decode()
    assert "simulated" not in page.split("<h2>")[0].lower(), "a real (HTTP) judge is not badged as simulated"
    assert "no usable reply after 3 attempts" in page and "Sorry, I would rather just chat freely" in page
    fragment = client.get(reverse("judging:run_progress", args=[run.pk]), headers=HTMX).content.decode()
    assert "hx-trigger" not in fragment, "a finished run stops polling"
    assert re.search(r"4 LLM calls", fragment) and 'data-testid="failed-count">1<' in fragment
    # Retry failed from the page: the item is queued again (sent to the broker after commit).
    response = client.post(reverse("judging:run_retry", args=[run.pk]))
    assert response.status_code == 302 and run.items.filter(status="queued").count() == 1
    response = client.post(reverse("judging:run_cancel", args=[run.pk]))
    assert response.status_code == 302 and run.items.filter(status="cancelled").count() == 1
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.CANCELLED
    sim = launch(simulator_judge(), campaign_of(1), enqueue_tasks=False)
    assert 'data-testid="run-simulated"' in client.get(reverse("judging:run_detail", args=[sim.pk])).content.decode()
    listing = client.get(reverse("judging:run_list")).content.decode()
    assert run.name in listing and sim.name in listing


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_admin_launches_a_simulator_judge_from_the_campaign_page_and_watches_it_finish(live_server, page):
    require_chromium()
    admin = make_user(Role.ADMIN, username="judge-browser-admin")
    campaign = campaign_of(3)
    judge = simulator_judge()
    with worker_thread(concurrency=4):
        login(page, live_server, admin.username)
        page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
        page.get_by_test_id("judge-panel").wait_for()  # loaded by htmx after the page
        assert "No judge run on this campaign yet" in page.get_by_test_id("judge-runs").inner_text()
        page.select_option("#id_judge_model", label=str(judge))
        page.fill("#id_samples", "2")
        # The judge is switched off while the page is open: the error comes back into the form, in place.
        ModelConfig.objects.filter(pk=judge.pk).update(is_active=False)
        page.evaluate("window.__notReloaded = true")
        page.click("#judge-launch-form button[type=submit]")
        page.get_by_test_id("judge-launch-errors").wait_for()
        assert page.evaluate("window.__notReloaded === true")
        assert "Select a valid choice" in page.locator(".field-judge_model").inner_text()
        assert page.input_value("#id_samples") == "2", "what was typed is kept"
        ModelConfig.objects.filter(pk=judge.pk).update(is_active=True)
        page.reload()
        page.get_by_test_id("judge-panel").wait_for()
        page.select_option("#id_judge_model", label=str(judge))
        page.fill("#id_samples", "2")
        page.click("#judge-launch-form button[type=submit]")
        page.wait_for_url(re.compile(r"/judging/runs/\d+/$"))  # htmx's HX-Redirect to the run's page
        assert page.get_by_test_id("run-simulated").is_visible()
        page.wait_for_function(
            "document.querySelector('[data-testid=progress-percent]').textContent.trim() === '100%'",
            timeout=90_000,
        )
        assert page.get_by_test_id("run-status").inner_text() == "Done"
        assert page.get_by_test_id("llm-calls").inner_text() == "6 LLM calls"
        # A finished run points the admin at the judge-vs-clinician statistics of its campaign.
        link = page.get_by_test_id("judge-results-link").locator("a")
        assert link.get_attribute("href") == f"/results/campaigns/{campaign.pk}/#judge"
        page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
        page.get_by_test_id("judge-runs").get_by_text("Done").wait_for()
    run = JudgeRun.objects.get()
    assert run.items.filter(status="done").count() == 6 and run.is_simulated
