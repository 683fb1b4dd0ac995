"""Validation mode results: how often clinicians agreed with the judge, per axis, with a 95% CI.

The paper reported the share of human verdicts agreeing with its judge (93.5% hard diagnosis, 90% soft,
79 / 87.5 / 86.5% susceptibility / severity / benefits, 87% flow) without intervals.

The interval. Two clinicians' verdicts on one conversation are not independent (both read the same
judge output on the same transcript), so a binomial interval over verdicts would be too narrow. With at
least MIN_CI_UNITS conversations the interval is the platform's seeded percentile bootstrap over
conversations (every verdict of a drawn conversation comes along; 1,000 resamples, seed 20260521, as
for alpha). Below that a bootstrap over few clusters under-covers, so the Wilson score interval over
verdicts is given instead and named as such: it treats verdicts as independent and is too narrow when
the clinicians of one conversation tend to agree with each other.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from judging.models import ValidationCampaign
from judging.validation import submitted_verdicts

from .reporting import table
from .stats.agreement import DEFAULT_N_BOOT, DEFAULT_SEED
from .stats.alpha import MIN_CI_UNITS

Z95 = 1.959963984540054
ALL_AXES = "all"


@dataclass(frozen=True)
class Verdict:
    conversation_id: int
    axis_key: str
    agrees: bool
    judge_value: float
    corrected_value: float | None


@dataclass(frozen=True)
class AxisAgreementRate:
    axis_key: str
    axis_name: str
    n_verdicts: int
    n_conversations: int
    n_agree: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    n_disagree: int
    mean_correction: float | None  # mean of (corrected - judge) over the disagreements with a corrected score


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927) score interval for a binomial proportion."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def cluster_bootstrap_interval(agree_per_unit: np.ndarray, n_per_unit: np.ndarray, n_boot: int,
                               seed: int) -> tuple[float, float]:
    """Percentile bootstrap of sum(agree)/sum(n) with units (conversations) drawn with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n_per_unit), size=(n_boot, len(n_per_unit)))
    rates = agree_per_unit[idx].sum(axis=1) / n_per_unit[idx].sum(axis=1)
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)


def agreement_rate(verdicts: list[Verdict], axis_key: str, axis_name: str, *, n_boot: int = DEFAULT_N_BOOT,
                   seed: int = DEFAULT_SEED) -> AxisAgreementRate:
    per_unit: dict[int, list[int]] = {}
    corrections = []
    for v in verdicts:
        agree_n = per_unit.setdefault(v.conversation_id, [0, 0])
        agree_n[0] += int(v.agrees)
        agree_n[1] += 1
        if not v.agrees and v.corrected_value is not None:
            corrections.append(v.corrected_value - v.judge_value)
    n = len(verdicts)
    n_agree = sum(a for a, _ in per_unit.values())
    units = len(per_unit)
    if n == 0:
        low = high = None
        method = ""
    elif units >= MIN_CI_UNITS:
        a = np.array([x[0] for x in per_unit.values()], dtype=float)
        m = np.array([x[1] for x in per_unit.values()], dtype=float)
        low, high = cluster_bootstrap_interval(a, m, n_boot, seed)
        method = f"bootstrap over conversations ({n_boot:,} resamples, seed {seed})"
    else:
        low, high = wilson_interval(n_agree, n)
        method = f"Wilson over verdicts (fewer than {MIN_CI_UNITS} conversations)"
    return AxisAgreementRate(
        axis_key=axis_key, axis_name=axis_name, n_verdicts=n, n_conversations=units, n_agree=n_agree,
        rate=n_agree / n if n else None, ci_low=low, ci_high=high, ci_method=method, n_disagree=n - n_agree,
        mean_correction=float(np.mean(corrections)) if corrections else None,
    )


def campaign_verdicts(campaign_id: int) -> tuple[list[tuple[str, str]], list[Verdict]]:
    """The rubric's judged axes in order (key, name) and every submitted verdict of the campaign."""
    rows = submitted_verdicts(campaign_id).values_list(
        "review__assignment__item__conversation_id", "axis__key", "axis__name", "axis__order", "agrees",
        "judge_score__value", "corrected_value")
    axes: dict[str, tuple[int, str]] = {}
    verdicts = []
    for conversation_id, key, name, order, agrees, judge_value, corrected in rows:
        axes[key] = (order, name)
        verdicts.append(Verdict(conversation_id, key, agrees, judge_value, corrected))
    ordered = sorted(axes.items(), key=lambda kv: (kv[1][0], kv[0]))
    return [(key, name) for key, (_, name) in ordered], verdicts


def agreement_rates(campaign_id: int, *, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
                    ) -> list[AxisAgreementRate]:
    """One row per axis, then one over all axes (conversations still the resampled unit)."""
    axes, verdicts = campaign_verdicts(campaign_id)
    rows = [agreement_rate([v for v in verdicts if v.axis_key == key], key, name, n_boot=n_boot, seed=seed)
            for key, name in axes]
    if axes:
        rows.append(agreement_rate(verdicts, ALL_AXES, "All axes", n_boot=n_boot, seed=seed))
    return rows


def validation_report(validation: ValidationCampaign, *, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = DEFAULT_SEED) -> dict:
    """The JSON the page, the CSV and the API are built from."""
    run = validation.judge_run
    rows = agreement_rates(validation.campaign_id, n_boot=n_boot, seed=seed)
    return {
        "campaign": validation.campaign_id,
        "judge_run": {"id": run.pk, "name": run.name, "judge_model": run.model_snapshot.get("model", ""),
                      "prompt_version": run.prompt_version, "simulated": run.is_simulated},
        "sample_index": validation.sample_index,
        "method": __doc__.split("The interval. ", 1)[1].strip().replace("\n", " "),
        "axes": [asdict(r) for r in rows],
    }


COLUMNS = [("Axis key", "text"), ("Axis", "text"), ("Verdicts", "int"), ("Conversations", "int"), ("Agree", "int"),
           ("Agreement rate", "num3"), ("95% CI low", "num3"), ("95% CI high", "num3"), ("CI method", "text"),
           ("Disagree", "int"), ("Mean corrected - judge (disagreements)", "num")]


def report_table(report: dict) -> dict:
    title = "Clinicians' agreement with the judge" + (" [simulated]" if report["judge_run"]["simulated"] else "")
    rows = [[r["axis_key"], r["axis_name"], r["n_verdicts"], r["n_conversations"], r["n_agree"], r["rate"], r["ci_low"],
             r["ci_high"], r["ci_method"], r["n_disagree"], r["mean_correction"]] for r in report["axes"]]
    return table(title, COLUMNS, rows, report["method"])
