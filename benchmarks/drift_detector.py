"""Operating characteristics of the rater drift detector (results.stats.raters.DRIFT_RULE).

Simulates campaigns of 3 raters on 600 conversations (10% of ratings missing), on a 1-4 scale and on a
binary label, with ratings driven by a latent quality per conversation plus rater noise and leniency.
For each campaign the detector runs once at the end, as the platform does after a submission:
- stable: nobody changes; every flag is a false positive;
- random: rater 0 rates at random for the last DRIFT_WINDOW ratings; a flag of rater 0 is a detection.

Run from the repository root: .venv/bin/python benchmarks/drift_detector.py
The last line is one JSON object with the rates.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from results.stats.raters import DRIFT_WINDOW, rater_statistics  # noqa: E402

N_UNITS = 600
REPS = 1000
SEED = 11


def campaign(rng, level: str, drifting: bool):
    latent = rng.normal(0, 1, N_UNITS)
    noisy = latent[:, None] + rng.normal(0, 0.6, (N_UNITS, 3)) + np.array([-0.2, 0.0, 0.25])
    if level == "nominal":
        x = (noisy > 0.1).astype(float)
    else:
        x = np.digitize(noisy, [-0.8, 0.2, 1.1]) + 1.0
    if drifting:
        late = np.arange(N_UNITS) >= N_UNITS - DRIFT_WINDOW
        x[late, 0] = rng.integers(0, 2, late.sum()) if level == "nominal" else rng.integers(1, 5, late.sum())
    x[rng.random(x.shape) < 0.1] = np.nan
    times = np.tile(np.arange(N_UNITS, dtype=float)[:, None], (1, 3))
    return x, times


def main() -> None:
    rng = np.random.default_rng(SEED)
    out = {"benchmark": "drift_detector", "conversations": N_UNITS, "raters": 3, "campaigns_per_case": REPS}
    start = time.perf_counter()
    for level in ("ordinal", "nominal"):
        false_flags = checks = detected = 0
        for _ in range(REPS):
            x, t = campaign(rng, level, drifting=False)
            stats = rater_statistics(x, level, timestamps=t)
            false_flags += sum(s["drift"]["flagged"] for s in stats)
            checks += len(stats)
            x, t = campaign(rng, level, drifting=True)
            detected += rater_statistics(x, level, timestamps=t)[0]["drift"]["flagged"]
        out[level] = {
            "false_positive_rate_per_check": false_flags / checks,
            "false_positives": false_flags,
            "checks": checks,
            "detection_rate_random_last_window": detected / REPS,
        }
        print(level, out[level], flush=True)
    out["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
