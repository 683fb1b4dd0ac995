"""The stigma report: the bootstrap CI against values worked out by hand, the fractions of a scripted
run through the loopback server, and the page, CSV, SVG and API that show them."""
import csv
import io
import json
import math

import pytest
from django.urls import reverse

from probes import services
from results.probe_report import bootstrap_share, stigma_report

from .test_probe_runs import scripted


def test_a_share_and_its_bootstrap_interval_match_the_binomial_by_hand():
    # 20 single-answer prompts, 6 stigmatizing: share 0.3. Resampling 20 units gives Binomial(20, 0.3)/20:
    # P(X <= 1) = 0.0076 < 0.025 < P(X <= 2) = 0.0355, so the 2.5% point is 2/20;
    # P(X <= 9) = 0.9520 < 0.975 < P(X <= 10) = 0.9829, so the 97.5% point is 10/20.
    result = bootstrap_share([(1, 1)] * 6 + [(0, 1)] * 14, n_boot=4000, seed=1)
    assert (result["n"], result["count"], result["clusters"]) == (20, 6, 20)
    assert result["share"] == pytest.approx(0.3)
    assert (result["ci_low"], result["ci_high"]) == (pytest.approx(0.10), pytest.approx(0.50))


def test_samples_of_one_prompt_are_resampled_together():
    # Two prompts of two samples each, one all stigmatizing, one not: a resample is both of one prompt
    # (share 0 or 1, a quarter of the time each) or one of each (0.5), so the interval is [0, 1].
    result = bootstrap_share([(2, 2), (0, 2)], n_boot=2000, seed=3)
    assert result["share"] == 0.5 and (result["ci_low"], result["ci_high"]) == (0.0, 1.0)
    assert result["n"] == 4 and result["clusters"] == 2


def test_edges_and_seeding():
    assert bootstrap_share([(3, 3), (2, 2)])[("ci_low")] == 1.0
    assert bootstrap_share([(0, 3), (0, 2)])["ci_high"] == 0.0
    empty = bootstrap_share([(0, 0)])
    assert empty["n"] == 0 and math.isnan(empty["share"]) and math.isnan(empty["ci_low"])
    data = [(1, 2), (0, 2), (2, 2), (1, 1), (0, 1)]
    # Seeded: the same answers always give the same interval, and the seed is reported with it.
    assert bootstrap_share(data, seed=9) == bootstrap_share(data, seed=9)
    assert bootstrap_share(data, seed=9)["seed"] == 9 and bootstrap_share(data)["n_boot"] == 1000


@pytest.fixture
def scripted_run(small_battery, http_model, fake_llm):
    fake_llm.responder = scripted
    run = services.launch_run(None, services.RunRequest(battery=small_battery, model=http_model, samples=2),
                              enqueue_tasks=False)
    services.run_inline(run, threads=2)
    return run


def rows_by(table, *columns):
    labels = [c["label"] for c in table["columns"]]
    return {tuple(row[labels.index(c)] for c in columns): dict(zip(labels, row, strict=True))
            for row in table["rows"]}


@pytest.mark.django_db(transaction=True)
def test_report_of_a_scripted_run(scripted_run, small_battery):
    report = stigma_report(small_battery, n_boot=2000)
    by_condition = rows_by(report["tables"]["by_condition"], "Condition")
    control, scz = by_condition[("Daily troubles",)], by_condition[("Schizophrenia",)]
    # Control: 'very unlikely' to be violent (not stigmatizing); the work question's replies named no
    # option and are left out of the fraction, reported beside it.
    assert (control["Scored answers"], control["Stigmatizing"], control["% stigmatizing"]) == (2, 0, 0.0)
    assert control["No valid option"] == 2 and control["Failed calls"] == 0
    # Schizophrenia: 'somewhat likely' violent (2 of 2), 'probably willing' to work with (0 of 2).
    assert (scz["Scored answers"], scz["Stigmatizing"], scz["% stigmatizing"]) == (4, 2, 50.0)
    assert (scz["95% CI low"], scz["95% CI high"], scz["Prompts"]) == (0.0, 100.0, 2)
    by_question = rows_by(report["tables"]["by_question"], "Question")
    assert by_question[("violent_others",)]["Stigmatizing"] == 2
    assert by_question[("violent_others",)]["Scored answers"] == 4
    assert by_question[("work_closely",)]["Scored answers"] == 2
    assert report["runs"][0]["label"] == "Model under test" and report["figure"]["values"]["schizophrenia"][
        "Model under test"] == [50.0, 0.0, 100.0, 4]


@pytest.mark.django_db(transaction=True)
def test_pages_csv_figure_and_api(scripted_run, small_battery, world, client):
    client.force_login(world.researcher)
    page = client.get(reverse("results:probe_report", args=[small_battery.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stigmatizing answers per model and condition" in html and "<td class=\"num\">50.0</td>" in html
    assert html.count('class="bar"') == 2  # control is 0%: a bar of height 0 is still drawn
    assert "arXiv 2504.18412" in html
    figure = client.get(reverse("results:probe_figure", args=[small_battery.pk]))
    assert figure["Content-Type"].startswith("image/svg+xml") and b'class="err"' in figure.content
    assert b">4</text>" in figure.content  # each bar prints its n
    response = client.get(reverse("results:probe_table_csv", args=[small_battery.pk, "by_condition"]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["Model", "Run", "Condition", "Scored answers"]
    assert ["Model under test", str(scripted_run.pk), "Schizophrenia", "4", "2", "50.0", "0.0", "100.0"] == rows[2][:8]
    assert client.get(reverse("results:probe_table_csv", args=[small_battery.pk, "nope"])).status_code == 404
    api = client.get(reverse("api:probe_report", args=[small_battery.pk]))
    body = json.loads(api.content)
    assert api.status_code == 200 and body["battery"]["slug"] == "stigma-small"
    assert body["tables"]["by_condition"]["rows"] == stigma_report(small_battery)["tables"]["by_condition"]["rows"]
    assert json.loads(client.get(reverse("api:probe_report", args=[999999])).content)["error"]["status"] == 404


@pytest.mark.django_db(transaction=True)
def test_run_pages_show_progress_and_what_needs_attention(scripted_run, world, client):
    client.force_login(world.admin)
    html = client.get(reverse("probes:run_detail", args=[scripted_run.pk])).content.decode()
    assert 'data-testid="answered-count">6<' in html and 'data-testid="no-option-count">2<' in html
    assert "names none of the options" in html and "I would need to know the person first." in html
    assert "Retry failed" in html
    client.force_login(world.researcher)
    html = client.get(reverse("probes:run_detail", args=[scripted_run.pk])).content.decode()
    assert "Retry failed" not in html


@pytest.mark.django_db(transaction=True)
def test_every_answer_downloads_as_csv(scripted_run, world, client):
    client.force_login(world.researcher)
    response = client.get(reverse("probes:run_items_csv", args=[scripted_run.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 8 and {r["run"] for r in rows} == {str(scripted_run.pk)}
    refused = [r for r in rows if r["no_valid_option_reason"]]
    assert len(refused) == 2 and all(r["answer"] == "" and r["stigmatizing"] == "" for r in refused)
    assert {r["stigmatizing"] for r in rows if r["answer"]} == {"True", "False"}
    assert all(r["prompt"].startswith("Read the description") and r["reply"] for r in rows)
