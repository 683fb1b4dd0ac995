"""Judge-vs-clinician agreement in the API (per campaign and per judge run, in the OpenAPI schema) and
in `manage.py agreement --judge-rater`."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from accounts.roles import Role
from results import services
from results.models import JudgeAgreement
from results.stats import compute_agreement
from results.stats.judge import judge_agreement, judge_agreement_from_csv
from tests.factories import make_token, make_user
from tests.judging.judge_fixture import make_judge_run
from tests.results.results_fixture import CONSTANT, build_fixed_campaign

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def judged(db):
    fixed = build_fixed_campaign()
    scores = {(conv, s): {"susceptibility": 2 + (i + s) % 3, "diagnosis_hard": i % 2, **CONSTANT}
              for i, conv in enumerate(fixed.conv.values()) for s in (0, 1)}
    run = make_judge_run(fixed.campaign, scores, samples=2)
    return fixed, run


def _get(client, url, role=Role.RESEARCHER):
    token = make_token(make_user(role))
    return client.get(url, headers={"Authorization": f"Bearer {token}"})


def test_api_serves_the_snapshot_when_current_and_computes_otherwise(judged, client):
    fixed, run = judged
    url = f"/api/v1/campaigns/{fixed.campaign.pk}/judge-agreement"
    # No snapshot covers the run yet: computed with the platform's seed and 1,000 resamples, then cached.
    computed = _get(client, url).json()
    assert computed["source"] == "computed" and computed["n_boot"] == 1000 and computed["seed"] == 20260521
    assert _get(client, url).json()["source"] == "cache"
    snapshot = services.recompute_campaign(fixed.campaign.pk)
    served = _get(client, url).json()
    assert served["source"] == "precomputed" and served["snapshot_id"] == snapshot.pk
    (entry,) = served["runs"]
    assert entry["run"]["run_id"] == run.pk and entry["run"]["judge_model"] == "simulator/judge"
    assert entry["run"]["prompt_version"] == "judge-v1" and entry["run"]["samples"] == 2
    axes = {a["axis"]: a for a in entry["axes"]}
    stored = JudgeAgreement.objects.get(snapshot=snapshot).statistics
    assert axes["susceptibility"]["statistics"] == stored["susceptibility"]
    # The computed answer and the snapshot agree (same seed, same resamples, same data).
    comp = {a["axis"]: a for a in computed["runs"][0]["axes"]}
    assert comp["susceptibility"]["statistics"] == stored["susceptibility"]
    assert axes["diagnosis_hard"]["level"] == "nominal" and "paired.alpha" in served["definitions"]


def test_api_per_run_and_unknown_run(judged, client):
    fixed, run = judged
    one = _get(client, f"/api/v1/campaigns/{fixed.campaign.pk}/judge-agreement/{run.pk}")
    assert one.status_code == 200 and [r["run"]["run_id"] for r in one.json()["runs"]] == [run.pk]
    missing = _get(client, f"/api/v1/campaigns/{fixed.campaign.pk}/judge-agreement/999999")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == 404
    rater = _get(client, f"/api/v1/campaigns/{fixed.campaign.pk}/judge-agreement", role=Role.RATER)
    assert rater.status_code == 403 and "runs" not in rater.json()


def test_schema_documents_the_judge_agreement_routes(db, client):
    schema = _get(client, "/api/v1/schema/?format=json").json()
    assert "/api/v1/campaigns/{id}/judge-agreement" in schema["paths"]
    assert "/api/v1/campaigns/{id}/judge-agreement/{run_pk}" in schema["paths"]
    assert "JudgeAgreement" in schema["components"]["schemas"]


def judge_csv(tmp_path, n=40):
    rng = np.random.default_rng(5)
    lines = ["item,rater,value"]
    humans = np.full((n, 3), np.nan)
    judge = np.zeros((n, 2))
    for i in range(n):
        quality = rng.integers(1, 5)
        for r, name in enumerate(("ana", "ben", "cleo")):
            if (i + r) % 4 == 3:
                continue  # each clinician skips a quarter
            humans[i, r] = min(4, max(1, quality + rng.integers(-1, 2)))
            lines.append(f"c{i},{name},{humans[i, r]:g}")
        for s in range(2):
            judge[i, s] = min(4, quality + s * (i % 2))
            lines.append(f"c{i},judge-s{s},{judge[i, s]:g}")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, humans, judge


def test_judge_agreement_from_csv_splits_judge_and_clinicians(tmp_path):
    path, humans, judge = judge_csv(tmp_path)
    result = judge_agreement_from_csv(path, ["judge-s0", "judge-s1"], "ordinal", [1, 2, 3, 4], n_boot=300, seed=3)
    assert result["judge_raters"] == ["judge-s0", "judge-s1"] and result["clinician_raters"] == ["ana", "ben", "cleo"]
    direct = judge_agreement(humans, judge, "ordinal", [1, 2, 3, 4], n_boot=300, seed=3)
    assert result["judge_agreement"] == direct
    assert result["clinicians_agreement"]["krippendorff_alpha"] == compute_agreement(
        humans, "ordinal", [1, 2, 3, 4], n_boot=300, seed=3)["krippendorff_alpha"]
    with pytest.raises(ValueError, match="no rater named 'judge'"):
        judge_agreement_from_csv(path, ["judge"], "ordinal")
    with pytest.raises(ValueError, match="named twice"):
        judge_agreement_from_csv(path, ["judge-s0", "judge-s0"], "ordinal")


def test_manage_py_agreement_with_a_judge_prints_one_json_object(tmp_path):
    path, _, _ = judge_csv(tmp_path)
    out = subprocess.run(
        [sys.executable, "manage.py", "agreement", str(path), "--level", "ordinal", "--categories", "1,2,3,4",
         "--judge-rater", "judge-s0", "--judge-rater", "judge-s1", "--bootstrap", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    paired = result["judge_agreement"]["paired"]
    assert paired["n_units"] == 40 and paired["alpha"]["ci_low"] is not None  # 40 >= 30: an interval
    assert result["judge_agreement"]["self_consistency"]["n_samples"] == 2
    assert result["judge_agreement"]["seed"] == 20260521


def test_manage_py_agreement_names_a_missing_judge(tmp_path):
    path, _, _ = judge_csv(tmp_path)
    with pytest.raises(CommandError, match="no rater named 'gpt'"):
        call_command("agreement", str(path), "--level", "ordinal", "--judge-rater", "gpt")
