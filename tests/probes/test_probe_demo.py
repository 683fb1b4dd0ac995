"""The demo (`make run`) includes the stigma battery run by both simulator models through the real path."""
import pytest
from django.urls import reverse

from demo import loader
from probes.models import ProbeItem, ProbeRun
from results.probe_report import battery_report, stigma_report


@pytest.mark.django_db(transaction=True)
def test_demo_runs_the_stigma_battery_with_the_simulator_models(client):
    loader.seed_foundation()
    all_runs = loader.ensure_demo_probes()
    assert len(all_runs) == 5 and all(ProbeRun.objects.get(pk=r.pk).status == "done" for r in all_runs)
    assert all(r.is_simulated for r in all_runs)
    # The interjection runs' replies are answered by the simulator judge too (labelled simulated), and one
    # run places the probes inside MedAgent conversations at stage 3.
    interjection = [r for r in all_runs if r.battery.protocol == "interjection"]
    assert len(interjection) == 3
    for run in interjection:
        answers = list(run.judge_answers.all())
        assert len(answers) == 10 and {a.status for a in answers} == {"done"}
        assert all(a.is_simulated and a.raw_reply in ("YES", "NO") for a in answers)
    (in_conversation,) = [r for r in interjection if r.placement == "medagent"]
    assert in_conversation.stage == 3 and all(i.stage >= 3 for i in in_conversation.items.all())
    assert all(i.conversation.messages.count() > 2 for i in in_conversation.items.all())
    judge_report = battery_report(in_conversation.battery, n_boot=100)
    judged = {row[0] for row in judge_report["tables"]["by_symptom_judge"]["rows"]}
    assert judged == {"Simulator sensemaker A [simulated]", "Simulator sensemaker B [simulated]",
                      "Simulator sensemaker A [simulated] · in conversation, stage 3"}
    assert judge_report["judges"] == [{"judge_model": in_conversation.judge_model_id,
                                       "prompt_version": "probe-judge-v1", "label": "Simulator judge [simulated]"}]
    runs = [r for r in all_runs if r.battery.protocol == "stigma"]
    report = stigma_report(runs[0].battery, n_boot=200)
    labels = {row[0] for row in report["tables"]["by_condition"]["rows"]}
    assert labels == {"Simulator sensemaker A [simulated]", "Simulator sensemaker B [simulated]"}
    shares = {(row[0], row[2]): row[5] for row in report["tables"]["by_condition"]["rows"]}
    label = "Simulator sensemaker A [simulated]"
    assert shares[(label, "Schizophrenia")] > shares[(label, "Daily troubles (control)")]
    # The interjection exchanges are simulated conversations in an open campaign for the demo raters.
    campaign = loader.ensure_demo_probe_campaign(all_runs)
    assert campaign.status == "open" and campaign.rubric.slug == "interjection-probe"
    assert campaign.items.count() == 2 * 10 and all(i.conversation.is_simulated for i in campaign.items.all())
    assert sorted(campaign.raters.values_list("username", flat=True)) == ["rater1", "rater2", "rater3"]
    replies = {i.conversation.messages.get(role="sensemaker").text for i in campaign.items.all()}
    assert len(replies) >= 2  # careful and complying simulated replies both occur
    # A second seeding changes nothing.
    before = ProbeItem.objects.count()
    loader.ensure_demo_probes()
    assert loader.ensure_demo_probe_campaign(all_runs).pk == campaign.pk
    assert ProbeRun.objects.count() == 5 and ProbeItem.objects.count() == before
    client.force_login(loader.User.objects.get(username="researcher"))
    html = client.get(reverse("results:probe_report", args=[runs[0].battery_id])).content.decode()
    assert "Simulator sensemaker B [simulated]" in html and 'class="bar"' in html
