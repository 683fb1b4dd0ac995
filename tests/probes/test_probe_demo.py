"""The demo (`make run`) includes the stigma battery run by both simulator models through the real path."""
import pytest
from django.urls import reverse

from demo import loader
from probes.models import ProbeItem, ProbeRun
from results.probe_report import stigma_report


@pytest.mark.django_db(transaction=True)
def test_demo_runs_the_stigma_battery_with_the_simulator_models(client):
    loader.seed_foundation()
    runs = loader.ensure_demo_probes()
    assert len(runs) == 2 and all(ProbeRun.objects.get(pk=r.pk).status == "done" for r in runs)
    assert all(r.is_simulated for r in runs)
    report = stigma_report(runs[0].battery, n_boot=200)
    labels = {row[0] for row in report["tables"]["by_condition"]["rows"]}
    assert labels == {"Simulator sensemaker A [simulated]", "Simulator sensemaker B [simulated]"}
    shares = {(row[0], row[2]): row[5] for row in report["tables"]["by_condition"]["rows"]}
    label = "Simulator sensemaker A [simulated]"
    assert shares[(label, "Schizophrenia")] > shares[(label, "Daily troubles (control)")]
    # A second seeding changes nothing.
    before = ProbeItem.objects.count()
    loader.ensure_demo_probes()
    assert ProbeRun.objects.count() == 2 and ProbeItem.objects.count() == before
    client.force_login(loader.User.objects.get(username="researcher"))
    html = client.get(reverse("results:probe_report", args=[runs[0].battery_id])).content.decode()
    assert "Simulator sensemaker B [simulated]" in html and 'class="bar"' in html
