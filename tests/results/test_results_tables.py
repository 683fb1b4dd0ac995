"""The results tables of a small fixed campaign (tests/results/results_fixture.py), checked against numbers
worked out by hand. The arithmetic is in the comments; the fixture's docstring has the data."""
import math

import pytest
from scipy import stats

from results.services import recompute_campaign
from tests.results.results_fixture import MODEL_A, MODEL_B, build_fixed_campaign

SUS, HARD = "Perceived susceptibility", "Diagnostic accuracy (hard)"


def rows(snapshot, name):
    t = snapshot.tables["tables"][name]
    labels = [c["label"] for c in t["columns"]]
    return [dict(zip(labels, r, strict=True)) for r in t["rows"]]


def one(rows_, **match):
    found = [r for r in rows_ if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


@pytest.fixture
def snapshot(db):
    fixed = build_fixed_campaign()
    snap = recompute_campaign(fixed.campaign.pk)
    snap.fixed = fixed
    return snap


def test_per_model_means_sd_ci_good_share(snapshot):
    by_model = rows(snapshot, "by_model")
    # Per-conversation susceptibility means: c1 (2+3)/2 = 2.5 (rater 3's DRAFT 1 is not counted), c2 (4+4+3)/3
    # = 11/3, c3 4, c4 (3+3)/2 = 3, c5 (2+1)/2 = 1.5.
    # Model a: (2.5 + 11/3 + 4)/3 = 61/18 = 3.388889. Deviations -16/18, 5/18, 11/18: squares sum 402/324,
    # / 2 -> variance 0.620370, SD 0.787636. t(0.975, 2) = 4.302653 (t table): half-width
    # 4.302653 * 0.787636 / sqrt(3) = 1.956596 -> CI 1.432293 to 5.345485.
    a = one(by_model, Model=MODEL_A, Axis=SUS)
    assert (a["Conversations"], a["Ratings"], a["Unit"]) == (3, 6, "1-4")
    assert a["Mean"] == pytest.approx(61 / 18)
    assert a["SD"] == pytest.approx(0.787636, abs=1e-6)
    assert a["95% CI low"] == pytest.approx(1.432293, abs=1e-5)
    assert a["95% CI high"] == pytest.approx(5.345485, abs=1e-5)
    # Good (mean >= 3): 11/3 and 4 -> 2 of 3 = 66.67%. Wilson, z = 1.959964: centre (2/3 + z^2/6)/(1 + z^2/3)
    # = 1.306910/2.280486 = 0.573084; half z*sqrt(2/27 + z^2/36)/2.280486 = 0.365427 -> 20.77% to 93.85%.
    assert a["Good (n)"] == 2 and a["Good (%)"] == pytest.approx(200 / 3)
    assert a["Good 95% CI low (%)"] == pytest.approx(20.766, abs=1e-3)
    assert a["Good 95% CI high (%)"] == pytest.approx(93.851, abs=1e-3)
    # Model b: (3 + 1.5)/2 = 2.25; SD sqrt((0.75^2 + 0.75^2)/1) = sqrt(1.125) = 1.060660; good 1 of 2.
    b = one(by_model, Model=MODEL_B, Axis=SUS)
    assert (b["Conversations"], b["Ratings"]) == (2, 4)
    assert b["Mean"] == pytest.approx(2.25) and b["SD"] == pytest.approx(math.sqrt(1.125))
    assert b["Good (n)"] == 1 and b["Good (%)"] == pytest.approx(50.0)
    # Hard diagnostic accuracy in percent: c1 (1+1)/2 = 1, c2 (0+1+0)/3 = 1/3, c3 0 -> a: 100 * (4/3)/3 = 44.44%,
    # SD of (100, 33.33, 0) = sqrt((55.56^2 + 11.11^2 + 44.44^2)/2) = 50.9175. c4 1, c5 0 -> b: 50%.
    ha = one(by_model, Model=MODEL_A, Axis=HARD)
    assert ha["Unit"] == "%" and ha["Mean"] == pytest.approx(400 / 9) and ha["SD"] == pytest.approx(50.9175, abs=1e-4)
    assert ha["Good (n)"] is None  # "good" is for scales; accuracy already is a share
    assert one(by_model, Model=MODEL_B, Axis=HARD)["Mean"] == pytest.approx(50.0)
    # SMOG needs no rater, so it covers EVERY conversation of the campaign, the unrated c6 (15.0) included:
    # a (10, 12, 11) -> 11, SD 1; b (14, 13, 15) -> 14, SD 1.
    sa = one(by_model, Model=MODEL_A, Axis="SMOG grade (computed, every conversation)")
    sb = one(by_model, Model=MODEL_B, Axis="SMOG grade (computed, every conversation)")
    assert (sa["Mean"], sa["SD"], sa["Conversations"]) == (pytest.approx(11.0), pytest.approx(1.0), 3)
    assert (sb["Mean"], sb["SD"], sb["Conversations"]) == (pytest.approx(14.0), pytest.approx(1.0), 3)


def test_summary_in_the_papers_layout(snapshot):
    summary = rows(snapshot, "summary")
    sus = one(summary, Metric="Perceived susceptibility (1-4)")
    assert sus[f"{MODEL_A} mean"] == pytest.approx(61 / 18) and sus[f"{MODEL_B} mean"] == pytest.approx(2.25)
    assert sus[f"{MODEL_A} n"] == 3 and sus[f"{MODEL_B} n"] == 2
    assert one(summary, Metric="Diagnostic accuracy (hard) (%)")[f"{MODEL_A} mean"] == pytest.approx(400 / 9)
    smog = one(summary, Metric="SMOG grade (computed, every conversation)")
    assert smog[f"{MODEL_A} SD"] == pytest.approx(1.0) and smog[f"{MODEL_B} mean"] == pytest.approx(14.0)
    assert smog[f"{MODEL_B} n"] == 3  # c6 has no rating but has a grade


def test_model_comparisons(snapshot):
    comparisons = rows(snapshot, "comparisons")
    # Mann-Whitney on per-conversation means, a = (2.5, 11/3, 4) vs b = (3, 1.5): pairs with a > b:
    # 2.5 > 1.5; 11/3 > 3, 1.5; 4 > 3, 1.5 -> U_a = 5 of 6; rank-biserial 2*5/6 - 1 = 2/3. Exact null: b's two
    # ranks are one of C(5,2) = 10 sets, U_a >= 5 only for {1,2} and {1,3}: P = 0.2, two-sided p = 0.4.
    mw = one(comparisons, Axis=SUS)
    assert (mw["Model A"], mw["Model B"], mw["Test"]) == (MODEL_A, MODEL_B, "Mann-Whitney U")
    assert (mw["n A"], mw["n B"]) == (3, 2)
    assert mw["Statistic (U or t)"] == pytest.approx(5.0)
    assert mw["Effect size"] == pytest.approx(2 / 3)
    assert mw["p"] == pytest.approx(0.4)
    assert mw["A: median (U) / mean (t)"] == pytest.approx(11 / 3) and mw["B: median (U) / mean (t)"] == 2.25
    # SMOG over every conversation, Welch: a (10, 12, 11) mean 11, variance 1; b (14, 13, 15) mean 14,
    # variance 1. t = -3/sqrt(1/3 + 1/3) = -3.674235; df = (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2) = 4; pooled SD 1,
    # d = -3.
    t = one(comparisons, Axis="SMOG grade (computed, every conversation)")
    assert t["Test"] == "Welch t-test" and (t["n A"], t["n B"]) == (3, 3)
    assert t["Statistic (U or t)"] == pytest.approx(-3.674235, abs=1e-6)
    assert t["df"] == pytest.approx(4.0)
    assert t["Effect size"] == pytest.approx(-3.0)
    assert t["p"] == pytest.approx(2 * stats.t.sf(3.674235, 4), abs=1e-6)


def test_breakdowns_trait_literacy_condition_length(snapshot):
    tl = rows(snapshot, "trait_literacy")
    # agreeableness/basic/a = c1, c3: susceptibility (2.5 + 4)/2 = 3.25, hard (100 + 0)/2 = 50%, SMOG 10.5.
    cell = one(tl, **{"Dominant trait": "agreeableness", "Health literacy": "basic", "Model": MODEL_A})
    assert cell["Conversations"] == 2
    assert cell["Perceived susceptibility (1-4)"] == pytest.approx(3.25)
    # The breakdown rows are rated conversations, and so is their SMOG column (labelled so).
    assert cell["Diagnostic accuracy (hard) (%)"] == pytest.approx(50.0)
    assert cell["SMOG grade (rated conversations)"] == 10.5
    # neuroticism/advanced/a = c2 alone: 11/3 and 33.33%; neuroticism/basic/b = c5: 1.5 and 0%.
    cell = one(tl, **{"Dominant trait": "neuroticism", "Health literacy": "advanced", "Model": MODEL_A})
    assert cell["Perceived susceptibility (1-4)"] == pytest.approx(11 / 3)
    assert cell["Diagnostic accuracy (hard) (%)"] == pytest.approx(100 / 3)
    assert one(tl, **{"Dominant trait": "neuroticism", "Health literacy": "basic",
                      "Model": MODEL_B})["Perceived susceptibility (1-4)"] == pytest.approx(1.5)
    # Cells without conversations are left out (no neuroticism/advanced/b), "all" pools the literacy levels.
    assert not [r for r in tl if r["Dominant trait"] == "neuroticism" and r["Health literacy"] == "advanced"
                and r["Model"] == MODEL_B]
    assert len(tl) == 8
    pooled = one(tl, **{"Dominant trait": "neuroticism", "Health literacy": "all", "Model": MODEL_A})
    assert pooled["Conversations"] == 1

    cond = rows(snapshot, "condition")
    # depression/a = c1, c3 -> 3.25; anxiety/b = c5 -> 1.5.
    assert one(cond, Condition="depression", Model=MODEL_A)["Perceived susceptibility (1-4)"] == pytest.approx(3.25)
    assert one(cond, Condition="anxiety", Model=MODEL_B)["Perceived susceptibility (1-4)"] == pytest.approx(1.5)
    assert len(cond) == 4

    length = rows(snapshot, "length")
    # Sensemaker messages: c1 4 and c4 4 -> "<=5"; c2 8 -> "6-10"; c3 12 -> "11-15"; c5 20 -> ">15".
    assert [(r["Sensemaker messages"], r["Model"], r["Conversations"]) for r in length] == [
        ("<=5", MODEL_A, 1), ("<=5", MODEL_B, 1), ("6-10", MODEL_A, 1), ("11-15", MODEL_A, 1), (">15", MODEL_B, 1)]
    assert one(length, **{"Sensemaker messages": "11-15"})["Perceived susceptibility (1-4)"] == 4.0
    assert one(length, **{"Sensemaker messages": ">15"})["Diagnostic accuracy (hard) (%)"] == 0.0


def test_stage_lengths_per_model(snapshot):
    stages = rows(snapshot, "stages")
    # Every conversation of the campaign (c6 too). Message i has stage [1,1,2,2,3,3,4,4][i].
    # a: c1 4 messages (stages 1,1,2,2), c2 6 (1,1,2,2,3,3), c3 2 (1,1): 12/3 = 4 per conversation;
    #    stage 1 (2+2+2)/3 = 2, stage 2 (2+2)/3 = 1.333, stage 3 2/3; sensemaker messages (4+8+12)/3 = 8.
    a = one(stages, Model=MODEL_A)
    assert a["Conversations"] == 3 and a["Messages per conversation"] == pytest.approx(4.0)
    assert [a[f"Stage {s}"] for s in range(1, 7)] == pytest.approx([2, 4 / 3, 2 / 3, 0, 0, 0])
    assert a["Sensemaker messages per conversation"] == pytest.approx(8.0)
    # b: c4 4 (1,1,2,2), c5 8 (1,1,2,2,3,3,4,4), c6 2 (1,1): 14/3; stages 2, 4/3, 2/3, 2/3; (4+20+6)/3 = 10.
    b = one(stages, Model=MODEL_B)
    assert b["Messages per conversation"] == pytest.approx(14 / 3)
    assert [b[f"Stage {s}"] for s in range(1, 7)] == pytest.approx([2, 4 / 3, 2 / 3, 2 / 3, 0, 0])
    assert b["Sensemaker messages per conversation"] == pytest.approx(10.0)


def test_distribution_counts_individual_ratings(snapshot):
    dist = rows(snapshot, "distribution")
    # Model a susceptibility ratings: 2, 3 (c1), 4, 4, 3 (c2), 4 (c3) -> 1:0, 2:1, 3:2, 4:3 of 6.
    a = [(r["Score"], r["Ratings"]) for r in dist if r["Axis"] == SUS and r["Model"] == MODEL_A]
    assert a == [(1.0, 0), (2.0, 1), (3.0, 2), (4.0, 3)]
    assert one(dist, Axis=SUS, Model=MODEL_A, Score=4.0)["Share of ratings (%)"] == pytest.approx(50.0)
    # Model b: 3, 3 (c4), 2, 1 (c5).
    b = [(r["Score"], r["Ratings"]) for r in dist if r["Axis"] == SUS and r["Model"] == MODEL_B]
    assert b == [(1.0, 1), (2.0, 1), (3.0, 2), (4.0, 0)]


def test_agreement_rater_and_kappa_tables(snapshot):
    agreement = rows(snapshot, "agreement")
    sus = one(agreement, Axis=SUS)
    # Pairable conversations c1, c2, c4, c5 (c3 has one rating). Exact agreement per conversation: c1 (2,3) 0/1,
    # c2 (4,4,3) 1/3 pairs, c4 (3,3) 1/1, c5 (2,1) 0/1 -> mean (0 + 1/3 + 1 + 0)/4 = 33.33%; within one: 100%.
    assert (sus["Level"], sus["Conversations with >= 2 ratings"]) == ("ordinal", 4)
    assert (sus["Raters"], sus["Ratings"]) == (3, 10)
    assert sus["Exact agreement (%)"] == pytest.approx(100 / 3)
    assert sus["Within one point (%)"] == pytest.approx(100.0)
    # Hard accuracy, nominal alpha from the coincidence matrix: c1 (1,1) adds o11 2; c2 (0,1,0) adds o00 1, o01 1,
    # o10 1; c4 (1,1) o11 2; c5 (0,0) o00 2 -> o00 3, o01 = o10 = 1, o11 4, n = 9, n0 = 4, n1 = 5.
    # D_o = 2/9, D_e = 2*4*5/(9*8) = 5/9, alpha = 1 - (2/9)/(5/9) = 0.6.
    hard = one(agreement, Axis=HARD)
    assert hard["Level"] == "nominal" and hard["Krippendorff's alpha"] == pytest.approx(0.6)
    assert hard["Within one point (%)"] is None and hard["ICC"] is None
    # ICC: only c2 is rated by all three raters (1 of 4 pairable), so the design is "overlap": one-way
    # ICC(1,k) on c1 (2,3), c2 (4,4,3), c4 (3,3), c5 (2,1). N = 9, grand mean 25/9; BMS = (53/9)/3 = 53/27,
    # WMS = (1/2 + 2/3 + 0 + 1/2)/5 = 1/3, k0 = (9 - 17/9)/3 = 20/9; ICC(1,1) = (53/27 - 1/3) /
    # (53/27 + (11/9)(1/3)) = 11/16; k = 2 (most common): ICC(1,2) = 2 (11/16) / (27/16) = 22/27.
    assert (sus["ICC model"], sus["ICC design"], sus["ICC k (ratings averaged)"], sus["ICC conversations"]) == (
        "ICC(1,k)", "overlap", 2, 4)
    assert sus["ICC"] == pytest.approx(22 / 27)

    r1, r2, r3 = (u.pseudonym for u in snapshot.fixed.raters)
    per_axis = rows(snapshot, "rater_axes")
    # Leniency on susceptibility: rater 1: c1 2-3 = -1, c2 4-3.5 = 0.5, c4 3-3 = 0 -> -1/6; rater 2: c1 3-2 = 1,
    # c2 4-3.5 = 0.5, c5 2-1 = 1 -> 5/6; rater 3: c2 3-4 = -1, c4 0, c5 1-2 = -1 -> -2/3.
    assert one(per_axis, Rater=r1, Axis=SUS)["Leniency"] == pytest.approx(-1 / 6)
    assert one(per_axis, Rater=r2, Axis=SUS)["Leniency"] == pytest.approx(5 / 6)
    assert one(per_axis, Rater=r3, Axis=SUS)["Leniency"] == pytest.approx(-2 / 3)
    # Exact agreement with the others: rater 1: c1 0/1, c2 1/2, c4 1/1 -> 2/4; rater 2: c1 0/1, c2 1/2, c5 0/1 -> 1/4.
    assert one(per_axis, Rater=r1, Axis=SUS)["Exact agreement (%)"] == pytest.approx(50.0)
    assert one(per_axis, Rater=r2, Axis=SUS)["Exact agreement (%)"] == pytest.approx(25.0)
    # Gold: c4 expects susceptibility 3; raters 1 and 3 gave 3, rater 2 did not rate c4.
    assert one(per_axis, Rater=r1, Axis=SUS)["Gold n"] == 1
    assert one(per_axis, Rater=r1, Axis=SUS)["Gold exact (%)"] == pytest.approx(100.0)
    assert one(per_axis, Rater=r2, Axis=SUS)["Gold n"] == 0

    kappa = rows(snapshot, "kappa")
    # Quadratic kappa on shared conversations. Raters 1-2 on c1 (2,3), c2 (4,4): observed mean squared
    # difference (1 + 0)/2 = 0.5; expected over all cross pairs of {2,4} x {3,4}: (1 + 4 + 1 + 0)/4 = 1.5;
    # kappa = 1 - 0.5/1.5 = 2/3. Raters 1-3 on c2 (4,3), c4 (3,3): observed 0.5, expected {4,3} x {3,3}: 0.5 -> 0.
    # Raters 2-3 on c2 (4,3), c5 (2,1): observed 1, expected {4,2} x {3,1}: (1 + 9 + 1 + 1)/4 = 3 -> 2/3.
    k = {(r["Rater A"], r["Rater B"]): (r["Kappa"], r["Shared conversations"]) for r in kappa if r["Axis"] == SUS}
    assert k[(r1, r2)] == (pytest.approx(2 / 3), 2)
    assert k[(r1, r3)] == (pytest.approx(0.0, abs=1e-12), 2)
    assert k[(r2, r3)] == (pytest.approx(2 / 3), 2)

    summary = rows(snapshot, "raters")
    assert [r["Rater"] for r in summary] == [r1, r2, r3]
    assert one(summary, Rater=r2)["Conversations rated"] == 4
    assert all(r["Drifting on"] == "no" for r in summary)


def test_simulator_output_is_labelled_and_kept_apart(db):
    """c5 (rated) and c6 (unrated) of model b were made with the offline simulator: they form their own
    group, '[simulated]' in every table, CSV and figure, and the Output column says 'simulated'."""
    from generation.models import Conversation
    from results import figures

    fixed = build_fixed_campaign()
    Conversation.objects.filter(pk__in=[fixed.conv["c5"].pk, fixed.conv["c6"].pk]).update(is_simulated=True)
    snap = recompute_campaign(fixed.campaign.pk, n_boot=0)
    sim = f"{MODEL_B} [simulated]"
    assert snap.tables["models"] == [MODEL_A, MODEL_B, sim]
    by_model = rows(snap, "by_model")
    # Real b is c4 alone (susceptibility 3); simulated b is c5 alone ((2 + 1)/2 = 1.5).
    assert one(by_model, Model=MODEL_B, Axis=SUS)["Mean"] == pytest.approx(3.0)
    assert one(by_model, Model=sim, Axis=SUS)["Mean"] == pytest.approx(1.5)
    assert {r["Model"]: r["Output"] for r in by_model} == {MODEL_A: "model", MODEL_B: "model", sim: "simulated"}
    # SMOG (every conversation): simulated b = c5 13.0 and c6 15.0.
    assert one(by_model, Model=sim, Axis="SMOG grade (computed, every conversation)")["Mean"] == pytest.approx(14.0)
    stages = rows(snap, "stages")
    # Stage table: simulated b = c5 (8 messages) and c6 (2): 5 per conversation; real b = c4, 4 messages.
    assert one(stages, Model=sim)["Output"] == "simulated" and one(stages, Model=sim)["Conversations"] == 2
    assert one(stages, Model=sim)["Messages per conversation"] == pytest.approx(5.0)
    assert one(stages, Model=MODEL_B)["Messages per conversation"] == pytest.approx(4.0)
    assert any(r["Model A"] == MODEL_B and r["Model B"] == sim for r in rows(snap, "comparisons"))
    means = figures.draw(snap, "means-1-to-4").svg
    assert sim in means and "Output 'simulated'" in snap.tables["tables"]["by_model"]["note"]
