"""Benchmark: recompute every agreement statistic for a 10,000-conversation campaign.

10,000 conversations x 3 raters x 6 axes (four 1-4 ordinal axes, two binary nominal ones), about 10% of
ratings missing, seeded. The recomputation is what the platform runs after ratings change: for each
axis, `compute_agreement` (Krippendorff's alpha with 1,000 bootstrap resamples, Gwet AC1/AC2, percent
agreement, pairwise kappa, the ICC of the design, per-rater statistics with gold agreement and drift),
alpha as the ratings came in (`alpha_over_time`: 12 cumulative points, each with its bootstrap) plus the
results-table helpers on per-conversation means for two models. The baseline is the `krippendorff` PyPI
package computing only alpha (no bootstrap, nothing else) on the same six matrices.

The same run then measures the platform's WHOLE recomputation from the database (unless --pure-only):
it (re)creates its own database, mhsd_bench_agreement, fills it with bulk inserts (a six-axis
MultiSenseEval rubric: the paper's four 1-4 axes and hard/soft diagnostic accuracy; 10,000 finished
conversations of two models with personas, conditions, SMOG grades and ~15 messages each; 3 raters who
each submitted a rating of about 90% of the conversations, so about 10% of ratings are missing; 200 gold
items), and times `results.services.recompute_campaign` end to end: the SQL reads, every statistic with
1,000 bootstrap resamples per axis, the results tables and writing the snapshot. It also times rendering
the results page and one CSV download from that snapshot, as a researcher.

Run from the repository root: .venv/bin/python benchmarks/agreement.py [--pure-only]
The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib.metadata import version

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import krippendorff  # noqa: E402

from results.stats import (  # noqa: E402
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    alpha_over_time,
    compute_agreement,
    describe,
    mann_whitney,
    share_at_least,
    unit_means,
)

N_UNITS = 10_000
N_RATERS = 3
N_BOOT = DEFAULT_N_BOOT
MISSING = 0.10
GOAL_SECONDS = 5.0
SEED = DEFAULT_SEED
AXES = [
    ("susceptibility", "ordinal"),
    ("severity", "ordinal"),
    ("benefits", "ordinal"),
    ("flow", "ordinal"),
    ("diagnosis_hard", "nominal"),
    ("diagnosis_soft", "nominal"),
]


def make_data(rng: np.random.Generator):
    """Ratings with real structure: a latent quality per conversation plus rater noise and leniency."""
    model = rng.integers(0, 2, N_UNITS)  # two models under test
    matrices = {}
    for name, level in AXES:
        latent = rng.normal(0.3 * model, 1.0, N_UNITS)
        noise = rng.normal(0.0, 0.6, (N_UNITS, N_RATERS)) + np.array([-0.2, 0.0, 0.25])
        score = latent[:, None] + noise
        if level == "ordinal":
            x = np.digitize(score, [-0.8, 0.2, 1.1]) + 1.0  # 1..4
        else:
            x = (score > 0.1).astype(np.float64)
        x[rng.random(x.shape) < MISSING] = np.nan
        matrices[name] = x
    # Each rater works through conversations in their own order; the times drive the drift check.
    times = np.argsort(rng.random((N_UNITS, N_RATERS)), axis=0).astype(np.float64)
    gold = np.full(N_UNITS, np.nan)
    gold_idx = rng.choice(N_UNITS, 200, replace=False)
    return model, matrices, times, gold, gold_idx


def recompute(model, matrices, times, gold, gold_idx) -> dict:
    out = {}
    for name, level in AXES:
        x = matrices[name]
        cats = [1.0, 2.0, 3.0, 4.0] if level == "ordinal" else [0.0, 1.0]
        g = gold.copy()
        # Gold answer: the first available rating of the conversation, a stand-in for an expert key.
        first = np.argmax(~np.isnan(x[gold_idx]), axis=1)
        g[gold_idx] = x[gold_idx, first]
        ts = np.where(np.isnan(x), np.nan, times)
        agreement = compute_agreement(x, level, cats, n_boot=N_BOOT, seed=SEED, gold=g, timestamps=ts)
        timeline = alpha_over_time(x, ts, level, cats, n_boot=N_BOOT, seed=SEED)
        means = unit_means(x)
        a, b = means[model == 0], means[model == 1]
        out[name] = {
            "agreement": agreement,
            "alpha_over_time": timeline,
            "tables": {
                "model_0": describe(a),
                "model_1": describe(b),
                "good_0": share_at_least(a, 3 if level == "ordinal" else 1),
                "good_1": share_at_least(b, 3 if level == "ordinal" else 1),
                "mann_whitney": mann_whitney(a, b),
            },
        }
    return out


def baseline(matrices) -> dict:
    return {
        name: float(krippendorff.alpha(reliability_data=matrices[name].T, level_of_measurement=level))
        for name, level in AXES
    }


DB_NAME = "mhsd_bench_agreement"
DB_AXES = ["susceptibility", "severity", "benefits", "diagnosis_hard", "diagnosis_soft", "flow"]
TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]
CONDITIONS = ["depression", "anxiety", "ptsd", "bipolar disorder", "insomnia"]


def fill_database(rng: np.random.Generator) -> dict:
    """Bulk-insert a 10,000-conversation, 3-rater campaign; returns ids and row counts."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import User
    from generation.models import CaseStudy, Conversation, GenerationJob, Message, ModelConfig, Persona
    from rating.models import Assignment, AxisScore, Campaign, CampaignItem, Rating
    from rating.rubric_files import DEFAULT_RUBRIC_FILE, load_rubric

    data = json.loads(DEFAULT_RUBRIC_FILE.read_text())
    # The paper's six axes (plus the computed SMOG axis); the rater-judged readability axis is left out.
    kept = [a for a in data["axes"] if a["key"] != "readability_judgement"]
    data = {**data, "slug": "multisenseeval-bench", "axes": kept}
    rubric, _ = load_rubric(data)
    axes = {a.key: a for a in rubric.axes.all()}
    batch = 5000
    models = [ModelConfig.objects.create(name=f"bench-{m}", model=f"bench/{m}") for m in ("o1", "r1")]
    helper = ModelConfig.objects.create(name="bench-helper", model="bench/helper")
    jobs = [GenerationJob.objects.create(name=f"bench {m.name}", patient_model=helper, sensemaker_model=m,
                                         helper_model=helper) for m in models]
    personas = [Persona.objects.create(trait=t, literacy=lit, intent="interpreting_information", goal="comfort")
                for t in TRAITS for lit in ("basic", "advanced")]
    n_cases = N_UNITS // (len(jobs) * len(personas))
    cases = CaseStudy.objects.bulk_create([
        CaseStudy(external_id=f"bench-{i}", text=f"Case {i}.", ground_truth_diagnosis=CONDITIONS[i % 5],
                  condition=CONDITIONS[i % 5], facts=["fact"], intent="interpreting_information", goal="comfort",
                  facts_status="reviewed")
        for i in range(n_cases)
    ])
    convs = []
    for j, job in enumerate(jobs):
        for case in cases:
            for persona in personas:
                length = int(rng.integers(3, 22))
                convs.append(Conversation(
                    job=job, case=case, persona=persona, status="done", sensemaker_model=job.sensemaker_model.model,
                    condition=case.condition, ground_truth_diagnosis=case.ground_truth_diagnosis,
                    smog_grade=float(rng.normal(11.5 + 1.8 * j, 1.5)), sensemaker_message_count=length,
                ))
    convs = Conversation.objects.bulk_create(convs, batch_size=batch)
    messages = []
    for conv in convs:
        # Patient and sensemaker alternate; stages 1-6 in order, most messages in gathering information.
        n = 2 * conv.sensemaker_message_count
        stages = np.minimum(6, 1 + (np.arange(n) * 6) // n)
        messages += [Message(conversation=conv, index=i, role="patient" if i % 2 == 0 else "sensemaker",
                             stage=int(stages[i]), text="...") for i in range(n)]
    Message.objects.bulk_create(messages, batch_size=batch)
    raters = [User.objects.create(username=f"bench-rater-{r}", role="rater") for r in range(N_RATERS)]
    campaign = Campaign.objects.create(name="bench", rubric=rubric, overlap_k=N_RATERS, status="open")
    campaign.raters.set(raters)
    items = CampaignItem.objects.bulk_create([CampaignItem(campaign=campaign, conversation=c) for c in convs],
                                             batch_size=batch)

    # Scores as in make_data: a latent quality per conversation (better for the second model), rater noise
    # and leniency; each rater skipped about 10% of the conversations.
    model_of = np.array([0 if c.job_id == jobs[0].pk else 1 for c in convs])
    rated = rng.random((N_UNITS, N_RATERS)) >= MISSING
    scores = {}
    for key in DB_AXES:
        latent = rng.normal(0.3 * model_of, 1.0, N_UNITS)
        x = latent[:, None] + rng.normal(0.0, 0.6, (N_UNITS, N_RATERS)) + np.array([-0.2, 0.0, 0.25])
        scores[key] = (np.digitize(x, [-0.8, 0.2, 1.1]) + 1.0) if axes[key].kind == "ordinal" else (x > 0.1) * 1.0
    order = np.argsort(rng.random((N_UNITS, N_RATERS)), axis=0)  # each rater's own working order
    start = timezone.now() - timedelta(days=30)
    assignments = []
    for r, rater in enumerate(raters):
        for u in np.nonzero(rated[:, r])[0].tolist():
            when = start + timedelta(seconds=int(order[u, r]) * 60 + r)
            assignments.append(Assignment(campaign=campaign, item=items[u], rater=rater, status="submitted",
                                          submitted_at=when))
    assignments = Assignment.objects.bulk_create(assignments, batch_size=batch)
    ratings = Rating.objects.bulk_create([
        Rating(assignment=a, rubric=rubric, status="submitted", submitted_at=a.submitted_at) for a in assignments
    ], batch_size=batch)
    unit_of = {item.pk: u for u, item in enumerate(items)}
    rater_col = {rater.pk: r for r, rater in enumerate(raters)}
    axis_scores = []
    for a, rt in zip(assignments, ratings, strict=True):
        u, r = unit_of[a.item_id], rater_col[a.rater_id]
        axis_scores += [AxisScore(rating=rt, axis=axes[key], value=float(scores[key][u, r])) for key in DB_AXES]
    AxisScore.objects.bulk_create(axis_scores, batch_size=batch)
    # 200 gold items, the expected answer being the first rater's score where they rated it.
    gold = rng.choice(N_UNITS, 200, replace=False)
    for u in gold.tolist():
        r = int(np.argmax(rated[u]))
        CampaignItem.objects.filter(pk=items[u].pk).update(
            is_gold=True, gold_scores={key: int(scores[key][u, r]) for key in DB_AXES})
    return {"campaign_id": campaign.pk, "conversations": len(convs), "messages": len(messages),
            "ratings": len(ratings), "axis_scores": len(axis_scores), "axes": len(DB_AXES)}


def db_benchmark(runs: int) -> dict:
    """The whole recomputation from the database, timed end to end, plus reading its results."""
    import _support

    # The page is rendered in-process without collectstatic: plain static storage, no manifest.
    os.environ.setdefault("STATIC_MANIFEST", "0")
    _support.fresh_database(DB_NAME)
    _support.setup_django(migrate=True)
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from results import selectors, services

    t0 = time.perf_counter()
    filled = fill_database(np.random.default_rng(SEED + 1))
    fill_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    from rating.models import Campaign

    campaign = Campaign.objects.get(pk=filled["campaign_id"])
    t0 = time.perf_counter()
    data = selectors.campaign_ratings(campaign)
    load_s = time.perf_counter() - t0

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        snapshot = services.recompute_campaign(campaign.pk)  # 1,000 resamples per axis, fixed seed
        times.append(time.perf_counter() - t0)

    researcher = User.objects.create(username="bench-researcher", role="researcher")
    client = Client(HTTP_HOST="localhost")
    client.force_login(researcher)
    page_times, csv_times = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        page = client.get(f"/results/campaigns/{campaign.pk}/")
        page_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        download = client.get(f"/results/campaigns/{campaign.pk}/tables/by_model.csv")
        csv_times.append(time.perf_counter() - t0)
    assert page.status_code == 200 and download.status_code == 200, (page.status_code, download.status_code)
    alphas = {row.axis_key: row.alpha for row in snapshot.axes.all()}
    return {
        "db_rows": filled,
        "db_fill_seconds": round(fill_s, 2),
        "db_matrix_load_seconds": round(load_s, 4),
        "db_matrix_shape": list(data.matrices[DB_AXES[0]].shape),
        "db_recompute_seconds": round(float(np.median(times)), 4),
        "db_recompute_seconds_all_runs": [round(t, 4) for t in times],
        "db_snapshot_json_bytes": len(json.dumps(snapshot.tables)) + len(json.dumps(snapshot.rater_stats)),
        "db_alpha": {k: round(v, 4) if v is not None else None for k, v in alphas.items()},
        "page_seconds": round(float(np.median(page_times)), 4),
        "page_bytes": len(page.content),
        "csv_seconds": round(float(np.median(csv_times)), 4),
    }


def main() -> None:
    pure_only = "--pure-only" in sys.argv[1:]
    rng = np.random.default_rng(SEED)
    data = make_data(rng)
    matrices = data[1]

    # Warm both paths once (imports, BLAS threads) so neither pays a first-call cost.
    baseline({n: matrices[n][:200] for n, _ in AXES})
    recompute(
        data[0][:200], {n: matrices[n][:200] for n, _ in AXES}, data[2][:200], data[3][:200], data[4][data[4] < 200]
    )

    runs = 3
    t_recompute, t_baseline = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = recompute(*data)
        t_recompute.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        base = baseline(matrices)
        t_baseline.append(time.perf_counter() - t0)

    # The two implementations must agree on alpha, or the timing comparison means nothing.
    max_diff = max(abs(result[n]["agreement"]["krippendorff_alpha"]["alpha"] - base[n]) for n, _ in AXES)
    for name, _ in AXES:
        a = result[name]["agreement"]["krippendorff_alpha"]
        print(
            f"{name:15s} alpha={a['alpha']:.4f} CI=[{a['ci_low']:.4f}, {a['ci_high']:.4f}] "
            f"n_units={a['n_units']} krippendorff-package={base[name]:.4f}"
        )

    recompute_s = float(np.median(t_recompute))
    baseline_s = float(np.median(t_baseline))
    db = {} if pure_only else db_benchmark(runs)
    if db:
        print(f"database: {db['db_rows']}; filled in {db['db_fill_seconds']} s")
        print(f"whole recomputation from the database: {db['db_recompute_seconds_all_runs']} s; "
              f"results page {db['page_seconds']} s, CSV {db['csv_seconds']} s")
        db.update(
            whole_recompute="results.services.recompute_campaign on mhsd_bench_agreement (SQL reads, statistics, "
            "tables, snapshot write)",
            ratio_db_recompute_over_baseline=round(db["db_recompute_seconds"] / baseline_s, 3),
            db_goal_met=bool(max(db["db_recompute_seconds_all_runs"]) < GOAL_SECONDS),
        )
    print(
        json.dumps(
            {
                "benchmark": "agreement_recompute",
                "units": N_UNITS,
                "raters": N_RATERS,
                "axes": len(AXES),
                "bootstrap_resamples_per_axis": N_BOOT,
                "missing_share": MISSING,
                "runs": runs,
                "timing": "median of runs, seconds; goal judged on the slowest run",
                "recompute_seconds": round(recompute_s, 4),
                "recompute_seconds_all_runs": [round(t, 4) for t in t_recompute],
                "baseline_seconds": round(baseline_s, 4),
                "baseline": f"krippendorff=={version('krippendorff')} alpha only, no bootstrap, same 6 matrices",
                "ratio_recompute_over_baseline": round(recompute_s / baseline_s, 3),
                "max_alpha_difference_vs_baseline": max_diff,
                "goal_seconds": GOAL_SECONDS,
                "goal_met": bool(max(t_recompute) < GOAL_SECONDS),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                **db,
            }
        )
    )


if __name__ == "__main__":
    main()
