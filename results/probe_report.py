"""Safety-probe reports: the fraction of stigmatizing answers per model and condition (and per question),
and for interjection probes the fraction of appropriate replies per model and symptom (from clinicians'
verification verdicts), each with a seeded percentile-bootstrap 95% CI.

The unit of resampling is the prompt (one vignette variant x one question): the samples of one prompt
are not independent of each other, so they are resampled together (a cluster bootstrap, using the
same multinomial resampler as Krippendorff's alpha, results.stats.alpha.resample_weights). Only answers
to scored questions count; replies that picked no option and failed calls are reported beside the
fraction, never counted in it.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from django.db.models import Count, Q

from probes.models import ItemStatus, ProbeBattery, ProbeItem, ProbeJudgeAnswer, ProbeRun

from .reporting import table
from .stats import DEFAULT_N_BOOT, DEFAULT_SEED
from .stats.alpha import resample_weights


def bootstrap_share(clusters, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED,
                    confidence: float = 0.95) -> dict:
    """Share of hits over trials, pooled over clusters [(hits, trials), ...], with a percentile-bootstrap
    CI that resamples whole clusters with replacement. Clusters without trials are left out."""
    pairs = np.array([(h, t) for h, t in clusters if t > 0], dtype=np.int64).reshape(-1, 2)
    hits, trials = int(pairs[:, 0].sum()), int(pairs[:, 1].sum())
    out = {"n": trials, "count": hits, "clusters": int(len(pairs)), "share": math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "n_boot": int(n_boot), "seed": int(seed)}
    if not trials:
        return out
    out["share"] = hits / trials
    if n_boot <= 0:
        return out
    patterns, freq = np.unique(pairs, axis=0, return_counts=True)
    shares = np.concatenate([
        (weights @ patterns[:, 0]) / (weights @ patterns[:, 1])
        for weights in resample_weights(freq, n_boot, seed)
    ])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(shares, [tail, 1.0 - tail])
    out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def bootstrap_note(n_boot: int, seed: int) -> str:
    return (f"95% CI: percentile bootstrap over prompts (a vignette variant and a question; its samples stay "
            f"together), {n_boot:,} resamples, seed {seed}: the same answers always give the same interval.")


def series_labels(runs) -> dict[int, str]:
    """A label per run: the model (marked [simulated] where the simulator answered), where the probes were
    placed when inside a MedAgent conversation, and the run number where that is not enough."""
    labels = {run.pk: run.model_label + (f" · in conversation, stage {run.stage}" if run.placement == "medagent"
                                         else "") for run in runs}
    repeated = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    return {pk: f"{label} · run {pk}" if label in repeated else label for pk, label in labels.items()}


def _prompt_clusters(items) -> dict[tuple, dict[tuple, list[int]]]:
    """{(run, group...): {prompt: [hits, trials]}} for the three groupings of the report."""
    groups: dict[tuple, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for run_id, condition, vignette, variant, question, stigmatizing in items:
        prompt = (vignette, variant, question)
        for key in ((run_id, "condition", condition), (run_id, "question", question),
                    (run_id, "cell", condition, question)):
            cell = groups[key][prompt]
            cell[1] += 1
            cell[0] += int(stigmatizing)
    return groups


def stigma_report(battery: ProbeBattery, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> dict:
    """Tables (for the page, CSV and the API) and the figure's data, for every run of the battery."""
    runs = list(ProbeRun.objects.filter(battery=battery).select_related("model").order_by("created_at", "pk"))
    labels = series_labels(runs)
    conditions = battery.conditions
    scored = [q for q in battery.content["questions"] if q.get("stigmatizing")]
    scored_keys = {q["key"] for q in scored}
    items = (ProbeItem.objects
             .filter(run__battery=battery, status=ItemStatus.DONE, stigmatizing__isnull=False)
             .values_list("run_id", "condition", "vignette_key", "variant_key", "question_key", "stigmatizing"))
    clusters = _prompt_clusters(items)
    outcome_rows = _outcome_counts(battery)

    def stat(*key):
        return bootstrap_share([tuple(v) for v in clusters.get(key, {}).values()], n_boot, seed)

    by_condition, by_question, cells, figure = [], [], [], {}
    for run in runs:
        label = labels[run.pk]
        counts = outcome_rows.get(run.pk, {})
        for condition, condition_label in conditions:
            s = stat(run.pk, "condition", condition)
            by_condition.append([label, run.pk, condition_label, s["n"], s["count"], _pct(s["share"]),
                                 _pct(s["ci_low"]), _pct(s["ci_high"]), s["clusters"],
                                 counts.get((condition, "no_option"), 0), counts.get((condition, "failed"), 0)])
            figure.setdefault(condition, {})[label] = [_pct(s["share"]), _pct(s["ci_low"]), _pct(s["ci_high"]), s["n"]]
        for question in scored:
            s = stat(run.pk, "question", question["key"])
            by_question.append([label, run.pk, question["key"], question["text"], s["n"], s["count"],
                                _pct(s["share"]), _pct(s["ci_low"]), _pct(s["ci_high"])])
            for condition, condition_label in conditions:
                c = stat(run.pk, "cell", condition, question["key"])
                cells.append([label, run.pk, condition_label, question["key"], c["n"], c["count"], _pct(c["share"]),
                              _pct(c["ci_low"]), _pct(c["ci_high"])])
    note = bootstrap_note(n_boot, seed)
    ci = [("% stigmatizing", "pct"), ("95% CI low", "pct"), ("95% CI high", "pct")]
    tables = {
        "by_condition": table(
            "Stigmatizing answers per model and condition",
            [("Model", "text"), ("Run", "int"), ("Condition", "text"), ("Scored answers", "int"),
             ("Stigmatizing", "int"), *ci, ("Prompts", "int"), ("No valid option", "int"), ("Failed calls", "int")],
            by_condition,
            f"Answers to the {len(scored)} scored questions ({', '.join(sorted(scored_keys))}); "
            "an answer is stigmatizing when the battery file lists it as such for its question. Replies that "
            f"picked no option and failed calls are not in the fraction. {note}"),
        "by_question": table(
            "Stigmatizing answers per model and question (all conditions)",
            [("Model", "text"), ("Run", "int"), ("Question", "text"), ("Wording", "text"),
             ("Scored answers", "int"), ("Stigmatizing", "int"), *ci],
            by_question, note),
        "by_condition_question": table(
            "Stigmatizing answers per model, condition and question",
            [("Model", "text"), ("Run", "int"), ("Condition", "text"), ("Question", "text"),
             ("Scored answers", "int"), ("Stigmatizing", "int"), *ci],
            cells, note),
    }
    return {
        "battery": {"id": battery.pk, "slug": battery.slug, "version": battery.version, "name": battery.name,
                    "protocol": battery.protocol, "digest": battery.digest},
        "runs": [{"id": run.pk, "label": labels[run.pk], "model": run.model_snapshot.get("model"),
                  "status": run.status, "samples": run.samples, "seed": run.seed, "simulated": run.is_simulated}
                 for run in runs],
        "n_boot": n_boot, "seed": seed, "measure": "% stigmatizing",
        "tables": tables,
        "figure": {"groups": conditions, "series": [labels[run.pk] for run in runs], "values": figure},
    }


def binary_agreement(units, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED, confidence: float = 0.95) -> dict:
    """Agreement of two sources on a yes/no answer (clinicians' verdicts vs a judge's answers).

    `units` is one (n_yy, n_yn, n_ny, n_nn) per item: how many of its clinician/judge pairs were
    yes/yes, yes/no, no/yes and no/no (each clinician verdict on the item paired with the judge's
    answer). Percent agreement, Cohen's kappa and Gwet's AC1 over the pooled pairs, each with a
    percentile-bootstrap CI that resamples whole items with replacement (seeded)."""
    cells = np.array([u for u in units if sum(u)], dtype=np.int64).reshape(-1, 4)
    out = {"items": int(len(cells)), "pairs": int(cells.sum()), "n_boot": int(n_boot), "seed": int(seed)}
    for name in ("percent", "kappa", "ac1"):
        out[name], out[f"{name}_low"], out[f"{name}_high"] = math.nan, math.nan, math.nan
    if not len(cells):
        return out

    def stats(tables: np.ndarray) -> dict[str, np.ndarray]:
        yy, yn, ny, nn = (tables[:, k] for k in range(4))
        n = tables.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            po = (yy + nn) / n
            clinician_yes, judge_yes = (yy + yn) / n, (yy + ny) / n
            pe_kappa = clinician_yes * judge_yes + (1 - clinician_yes) * (1 - judge_yes)
            mean_yes = (clinician_yes + judge_yes) / 2
            pe_ac1 = 2 * mean_yes * (1 - mean_yes)
            return {"percent": 100 * po, "kappa": (po - pe_kappa) / (1 - pe_kappa), "ac1": (po - pe_ac1) / (1 - pe_ac1)}

    point = stats(cells.sum(axis=0, keepdims=True).astype(np.float64))
    for name, value in point.items():
        out[name] = float(value[0])
    if n_boot > 0:
        patterns, freq = np.unique(cells, axis=0, return_counts=True)
        boot = {name: [] for name in point}
        for weights in resample_weights(freq, n_boot, seed):
            for name, values in stats(weights @ patterns).items():
                boot[name].append(values)
        tail = (1.0 - confidence) / 2.0
        for name, chunks in boot.items():
            values = np.concatenate(chunks)
            values = values[np.isfinite(values)]
            if values.size:
                out[f"{name}_low"], out[f"{name}_high"] = (float(v) for v in np.quantile(values, [tail, 1 - tail]))
    return out


def judge_labels(battery: ProbeBattery) -> dict[tuple, str]:
    """A label per (judge model, prompt version) that answered this battery's items: the judge's name at
    the time, marked [simulated] where the simulator answered."""
    labels = {}
    for answer in (ProbeJudgeAnswer.objects.filter(run__battery=battery).order_by("judge_model_id", "prompt_version")
                   .distinct("judge_model_id", "prompt_version").only("judge_model_id", "prompt_version",
                                                                      "judge_snapshot")):
        labels[(answer.judge_model_id, answer.prompt_version)] = answer.judge_label
    return labels


VERDICT_PATH = "rating__assignment__item__conversation__probe_item__"


def interjection_report(battery: ProbeBattery, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> dict:
    """Fraction of appropriate replies per model and symptom (and per probe), from clinicians' answers to
    each probe's verification question: a verdict is appropriate when it is the probe's correct answer.
    Every submitted verdict counts; the verdicts on one probe (all its samples and raters) are resampled
    together."""
    from rating.models import AxisScore

    runs = list(ProbeRun.objects.filter(battery=battery).select_related("model").order_by("created_at", "pk"))
    labels = series_labels(runs)
    probes = {probe["key"]: probe for probe in battery.content["probes"]}
    verdicts = (AxisScore.objects
                .filter(axis__key="verification", axis__rubric__slug="interjection-probe",
                        rating__status="submitted", value__isnull=False,
                        **{f"{VERDICT_PATH}run__battery": battery})
                .values_list(f"{VERDICT_PATH}run_id", f"{VERDICT_PATH}condition", f"{VERDICT_PATH}vignette_key",
                             "value", f"{VERDICT_PATH}id"))
    groups: dict[tuple, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    clinician_yes: dict[int, list[bool]] = defaultdict(list)  # item -> each clinician's answer
    for run_id, symptom, probe_key, value, item_id in verdicts:
        appropriate = (value >= 0.5) == (probes[probe_key]["correct_answer"] == "yes")
        clinician_yes[item_id].append(value >= 0.5)
        for key in ((run_id, "symptom", symptom), (run_id, "probe", probe_key)):
            cell = groups[key][probe_key]
            cell[0] += int(appropriate)
            cell[1] += 1
    # The judges' answers: the same fraction, and their agreement with the clinicians on the same items.
    judges = judge_labels(battery)
    judge_groups: dict[tuple, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    pairs: dict[tuple, list[tuple]] = defaultdict(list)
    judged = (ProbeJudgeAnswer.objects.filter(run__battery=battery, status=ItemStatus.DONE)
              .values_list("run_id", "judge_model_id", "prompt_version", "item__condition", "item__vignette_key",
                           "item_id", "answer_yes"))
    for run_id, judge_id, version, symptom, probe_key, item_id, yes in judged:
        judge = (judge_id, version)
        cell = judge_groups[(run_id, judge, symptom)][probe_key]
        cell[0] += int(yes == (probes[probe_key]["correct_answer"] == "yes"))
        cell[1] += 1
        humans = clinician_yes.get(item_id, [])
        unit = (sum(h and yes for h in humans), sum(h and not yes for h in humans),
                sum(not h and yes for h in humans), sum(not h and not yes for h in humans))
        for key in ((run_id, judge), ("all", judge)):
            pairs[key].append(unit)
    judge_failed = {(row["run_id"], (row["judge_model_id"], row["prompt_version"])): row["n"] for row in
                    ProbeJudgeAnswer.objects.filter(run__battery=battery, status=ItemStatus.FAILED)
                    .values("run_id", "judge_model_id", "prompt_version").annotate(n=Count("id")).order_by()}
    exchanges = dict(ProbeItem.objects.filter(run__battery=battery, conversation__isnull=False)
                     .values("run_id").annotate(n=Count("id")).values_list("run_id", "n"))

    def stat(*key):
        return bootstrap_share([tuple(v) for v in groups.get(key, {}).values()], n_boot, seed)

    by_symptom, by_probe, figure = [], [], {}
    ci = [("% appropriate", "pct"), ("95% CI low", "pct"), ("95% CI high", "pct")]
    for run in runs:
        label = labels[run.pk]
        for symptom, symptom_label in battery.conditions:
            st = stat(run.pk, "symptom", symptom)
            by_symptom.append([label, run.pk, symptom_label, st["n"], st["count"], _pct(st["share"]),
                               _pct(st["ci_low"]), _pct(st["ci_high"]), st["clusters"]])
            figure.setdefault(symptom, {})[label] = [_pct(st["share"]), _pct(st["ci_low"]), _pct(st["ci_high"]),
                                                     st["n"]]
        for key, probe in probes.items():
            st = stat(run.pk, "probe", key)
            by_probe.append([label, run.pk, key, probe["verification_question"], probe["correct_answer"], st["n"],
                             st["count"], _pct(st["share"]), _pct(st["ci_low"]), _pct(st["ci_high"])])
    by_judge, agreement = [], []
    for run in runs:
        label = labels[run.pk]
        for judge, judge_label in judges.items():
            if not any(key[:2] == (run.pk, judge) for key in judge_groups) and (run.pk, judge) not in judge_failed:
                continue  # this judge did not answer this run
            for symptom, symptom_label in battery.conditions:
                st = bootstrap_share([tuple(v) for v in judge_groups.get((run.pk, judge, symptom), {}).values()],
                                     n_boot, seed)
                by_judge.append([label, run.pk, judge_label, symptom_label, st["n"], st["count"], _pct(st["share"]),
                                 _pct(st["ci_low"]), _pct(st["ci_high"]), st["clusters"]])
                figure.setdefault(symptom, {})[f"{label} · judge {judge_label}"] = [
                    _pct(st["share"]), _pct(st["ci_low"]), _pct(st["ci_high"]), st["n"]]
            ag = binary_agreement(pairs.get((run.pk, judge), []), n_boot, seed)
            agreement.append(_agreement_row(label, run.pk, judge_label, ag, judge_failed.get((run.pk, judge), 0)))
    for judge, judge_label in judges.items():
        if len({key[0] for key in pairs if key[1] == judge and key[0] != "all"}) > 1:
            ag = binary_agreement(pairs.get(("all", judge), []), n_boot, seed)
            failed = sum(n for (_, j), n in judge_failed.items() if j == judge)
            agreement.append(_agreement_row("All runs", None, judge_label, ag, failed))
    note = (bootstrap_note(n_boot, seed).replace("prompts (a vignette variant and a question; its samples stay "
                                                 "together)", "probes (all verdicts on one probe stay together)")
            + " Each submitted clinician verdict counts once.")
    tables = {
        "by_symptom": table(
            "Appropriate replies per model and symptom (clinicians' verdicts)",
            [("Model", "text"), ("Run", "int"), ("Symptom", "text"), ("Verdicts", "int"), ("Appropriate", "int"),
             *ci, ("Probes", "int")], by_symptom,
            "A reply is appropriate when the clinician's answer to the probe's verification question is the "
            f"probe's correct answer. {note}"),
        "by_probe": table(
            "Appropriate replies per model and probe",
            [("Model", "text"), ("Run", "int"), ("Probe", "text"), ("Verification question", "text"),
             ("Correct answer", "text"), ("Verdicts", "int"), ("Appropriate", "int"), *ci], by_probe, note),
        "by_symptom_judge": table(
            "Appropriate replies per model and symptom (LLM judge's answers)",
            [("Model", "text"), ("Run", "int"), ("Judge", "text"), ("Symptom", "text"), ("Judge answers", "int"),
             ("Appropriate", "int"), *ci, ("Probes", "int")], by_judge,
            "The same rule applied to the judge's YES/NO answer to the verification question (one answer per "
            "item and judge; answers that never parsed as YES or NO are failed, not counted). "
            f"{note.replace(' Each submitted clinician verdict counts once.', '')}"),
        "judge_agreement": table(
            "Clinician-vs-judge agreement on the verification question",
            [("Model", "text"), ("Run", "int"), ("Judge", "text"), ("Items both answered", "int"),
             ("Verdict pairs", "int"), ("% agreement", "pct"), ("95% CI low", "pct"), ("95% CI high", "pct"),
             ("Cohen's kappa", "num3"), ("kappa CI low", "num3"), ("kappa CI high", "num3"),
             ("Gwet's AC1", "num3"), ("AC1 CI low", "num3"), ("AC1 CI high", "num3"),
             ("Failed judge answers", "int")], agreement,
            "Each clinician verdict on an item is paired with the judge's answer on that item (yes/no); an item "
            "counts when both answered. Cohen's kappa and Gwet's AC1 (two categories) over the pooled pairs; "
            f"95% CIs: percentile bootstrap over items, {n_boot:,} resamples, seed {seed}. AC1 stays informative "
            "when nearly every answer is the same, where kappa collapses."),
    }
    return {
        "battery": {"id": battery.pk, "slug": battery.slug, "version": battery.version, "name": battery.name,
                    "protocol": battery.protocol, "digest": battery.digest},
        "runs": [{"id": run.pk, "label": labels[run.pk], "model": run.model_snapshot.get("model"),
                  "status": run.status, "samples": run.samples, "seed": run.seed, "simulated": run.is_simulated,
                  "exchanges": exchanges.get(run.pk, 0)} for run in runs],
        "judges": [{"judge_model": judge_id, "prompt_version": version, "label": label}
                   for (judge_id, version), label in judges.items()],
        "n_boot": n_boot, "seed": seed, "tables": tables, "measure": "% appropriate",
        # Clinicians' series per run, then each judge's beside them.
        "figure": {"groups": battery.conditions,
                   "series": list(dict.fromkeys([labels[run.pk] for run in runs]
                                                + [name for values in figure.values() for name in values])),
                   "values": figure},
    }


def _agreement_row(label, run_id, judge_label, ag: dict, failed: int) -> list:
    def num(value):
        return None if not math.isfinite(value) else round(value, 3)

    return [label, run_id, judge_label, ag["items"], ag["pairs"], _round(ag["percent"]), _round(ag["percent_low"]),
            _round(ag["percent_high"]), num(ag["kappa"]), num(ag["kappa_low"]), num(ag["kappa_high"]),
            num(ag["ac1"]), num(ag["ac1_low"]), num(ag["ac1_high"]), failed]


def _round(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value, 2)


def battery_report(battery: ProbeBattery, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> dict:
    build = interjection_report if battery.protocol == "interjection" else stigma_report
    return build(battery, n_boot, seed)


def _outcome_counts(battery: ProbeBattery) -> dict[int, dict]:
    """Per run: replies that picked no option, and failed calls, per condition."""
    rows = (ProbeItem.objects.filter(run__battery=battery)
            .filter(Q(status=ItemStatus.FAILED) | Q(status=ItemStatus.DONE, answer=""))
            .values("run_id", "condition", "status").annotate(n=Count("id")).order_by())
    out: dict[int, dict] = defaultdict(dict)
    for row in rows:
        kind = "failed" if row["status"] == ItemStatus.FAILED else "no_option"
        out[row["run_id"]][(row["condition"], kind)] = row["n"]
    return out


def _pct(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(100.0 * value, 2)
