"""Benchmark: the agreement recomputation with one LLM judge run added (issue 10).

The campaign of benchmarks/agreement.py (10,000 conversations x 3 raters x 6 axes, about 10% of ratings
missing, 200 gold items), in its own database mhsd_bench_judge_agreement, plus one finished judge run that
scored every conversation on every axis (one sample; --samples N for more): 10,000 judge items and 60,000
judge scores, the judge's score being the clinicians' rounded mean plus seeded noise.

Timed end to end, as the platform runs it (`results.services.recompute_campaign`: SQL reads, every
statistic with 1,000 bootstrap resamples per axis, tables, snapshot write):
- baseline: the same recomputation with the judge run marked as still running, so left out (clinicians
  only), in the same run, alternating with the timed runs with the judge so both see the same load;
- with the judge: the recomputation that also computes, per axis, alpha and Gwet's AC2 against the
  clinicians' mean, the judge as one more rater with its paired interval, bias and limits of agreement
  (self-consistency too with --samples >= 2), the per-model tables from the judge, and stores them.
Also the in-memory judge statistics alone (results.stats.judge on the six matrices) and reading the
results page, a judge CSV and a judge figure from the snapshot.

Run from the repository root: .venv/bin/python benchmarks/judge_agreement.py [--samples N]
The last line of output is one JSON object with the figures; goal: the slowest recompute with the judge
under 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _support  # noqa: E402
from agreement import N_BOOT, N_RATERS, N_UNITS, SEED, fill_database  # noqa: E402

DB_NAME = "mhsd_bench_judge_agreement"
GOAL_SECONDS = 5.0
RUNS = 3


def add_judge_run(campaign, samples: int, rng: np.random.Generator) -> dict:
    """A finished judge run over every conversation: bulk inserts, like a run's task would have written."""
    from django.utils import timezone

    from generation.models import ModelConfig
    from judging.models import JudgeItem, JudgeRun, JudgeScore
    from results import selectors

    data = selectors.campaign_ratings(campaign)
    model = ModelConfig.objects.create(name="bench-judge", model="bench/judge")
    now = timezone.now()
    run = JudgeRun.objects.create(name="bench judge", campaign=campaign, rubric=campaign.rubric, judge_model=model,
                                  model_snapshot={"model": "bench/judge"}, samples=samples, seed=1,
                                  status=JudgeRun.Status.DONE, started_at=now, finished_at=now)
    conv_ids = data.conversation_ids.tolist()
    items = JudgeItem.objects.bulk_create([
        JudgeItem(run=run, conversation_id=c, sample_index=s, status="done", finished_at=now, attempts=1, calls=1)
        for c in conv_ids for s in range(samples)
    ], batch_size=5000)
    scores = []
    for axis in data.axes:
        means = np.nan_to_num(np.nanmean(data.matrices[axis.key], axis=1), nan=float(axis.scale_min or 0))
        lo, hi = float(axis.scale_min), float(axis.scale_max)
        noise = rng.normal(0.25, 0.6, (len(conv_ids), samples))  # a lenient, noisy judge
        values = np.clip(np.rint(means[:, None] + noise), lo, hi)
        for k, item in enumerate(items):
            scores.append(JudgeScore(item=item, axis=axis, value=float(values[k // samples, k % samples]),
                                     rationale="bench", cited_messages=[1]))
    JudgeScore.objects.bulk_create(scores, batch_size=5000)
    return {"judge_run_id": run.pk, "judge_items": len(items), "judge_scores": len(scores), "samples": samples}


def timed(fn, runs=RUNS):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1, help="judge samples per conversation (default 1)")
    args = parser.parse_args()
    os.environ.setdefault("STATIC_MANIFEST", "0")  # pages rendered in-process without collectstatic
    _support.fresh_database(DB_NAME)
    _support.setup_django(migrate=True)
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from judging.models import JudgeRun
    from rating.models import Campaign
    from results import judge_selectors, selectors, services
    from results.models import JudgeAgreement
    from results.stats.judge import judge_agreement

    t0 = time.perf_counter()
    filled = fill_database(np.random.default_rng(SEED + 1))
    campaign = Campaign.objects.get(pk=filled["campaign_id"])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    judge_rows = add_judge_run(campaign, args.samples, np.random.default_rng(SEED + 2))
    fill_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    services.recompute_campaign(campaign.pk)  # warm imports and caches once, before any timing

    # Baseline and judge runs alternate, so a change in the machine's load hits both alike: the baseline
    # sees the run as still running (unfinished runs are left out), the other as done.
    baseline, with_judge = [], []
    for _ in range(RUNS):
        for status, times in ((JudgeRun.Status.RUNNING, baseline), (JudgeRun.Status.DONE, with_judge)):
            JudgeRun.objects.filter(pk=judge_rows["judge_run_id"]).update(status=status)
            snapshot, seconds = timed(lambda: services.recompute_campaign(campaign.pk), runs=1)
            times += seconds
    stored = JudgeAgreement.objects.get(snapshot=snapshot)

    # The judge statistics alone, in memory, on the matrices the recompute read.
    data = selectors.campaign_ratings(campaign)
    run = judge_selectors.campaign_judge_runs(campaign).get()
    t0 = time.perf_counter()
    scores = judge_selectors.judge_scores(campaign, run, data.axes)
    read_judge_s = time.perf_counter() - t0

    def judge_stats():
        return {axis.key: judge_agreement(data.matrices[axis.key], scores.aligned(axis.key, data.conversation_ids),
                                          selectors.axis_level(axis), selectors.axis_categories(axis),
                                          n_boot=N_BOOT, seed=SEED, judge_all=scores.matrices[axis.key])
                for axis in data.axes}

    in_memory, memory_times = timed(judge_stats)

    researcher = User.objects.create(username="bench-researcher", role="researcher")
    client = Client(HTTP_HOST="localhost")
    client.force_login(researcher)
    base = f"/results/campaigns/{campaign.pk}"
    reads = {}
    for label, url in (("page", f"{base}/"), ("judge_csv", f"{base}/judge/{run.pk}/tables/judge_vs_clinicians.csv"),
                       ("judge_svg", f"{base}/judge/{run.pk}/figures/bland-altman-susceptibility.svg")):
        response, times = timed(lambda u=url: client.get(u))
        assert response.status_code == 200, (label, response.status_code)
        reads[f"{label}_seconds"] = round(float(np.median(times)), 4)
        reads[f"{label}_bytes"] = len(response.content)

    base_s, judge_s = float(np.median(baseline)), float(np.median(with_judge))
    headline = {k: {"alpha_vs_mean": round(v["paired"]["alpha"]["value"], 4),
                    "bias": round(v["paired"]["bias"]["value"], 4),
                    "alpha_with_judge_minus_without": round(v["one_more_rater"]["difference"]["value"], 4)}
                for k, v in stored.statistics.items()}
    for key, h in headline.items():
        print(f"{key:15s} {h}")
    print(f"recompute without judge {[round(t, 3) for t in baseline]} s; "
          f"with judge {[round(t, 3) for t in with_judge]} s")
    print(json.dumps({
        "benchmark": "judge_agreement_recompute",
        "units": N_UNITS,
        "raters": N_RATERS,
        "axes": len(data.axes),
        "judge_samples": args.samples,
        "bootstrap_resamples_per_statistic": N_BOOT,
        "db_rows": {**filled, **judge_rows},
        "db_fill_seconds": round(fill_s, 2),
        "runs": RUNS,
        "timing": "median of runs, seconds; goal judged on the slowest run with the judge",
        "recompute_with_judge_seconds": round(judge_s, 4),
        "recompute_with_judge_seconds_all_runs": [round(t, 4) for t in with_judge],
        "baseline": "results.services.recompute_campaign on the same campaign with the judge run not finished "
        "(so left out), alternating with the runs with the judge",
        "baseline_seconds": round(base_s, 4),
        "baseline_seconds_all_runs": [round(t, 4) for t in baseline],
        "ratio_with_judge_over_baseline": round(judge_s / base_s, 3),
        "judge_added_seconds": round(judge_s - base_s, 4),
        "judge_scores_read_seconds": round(read_judge_s, 4),
        "judge_statistics_in_memory_seconds": round(float(np.median(memory_times)), 4),
        "in_memory_equals_stored": bool(all(
            abs(in_memory[k]["paired"]["alpha"]["value"] - stored.statistics[k]["paired"]["alpha"]["value"]) < 1e-12
            for k in stored.statistics)),
        **reads,
        "goal_seconds": GOAL_SECONDS,
        "goal_met": bool(max(with_judge) < GOAL_SECONDS),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
