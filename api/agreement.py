"""Agreement per campaign and axis for the API and the datasheet.

The statistics are the pure functions of results.stats. When the results app holds a current
snapshot for the campaign (results.models.AgreementSnapshot, recomputed after ratings change), that
is served; otherwise agreement is computed on request with a modest bootstrap and cached in Redis
under a key that includes the fingerprint of the campaign's submitted ratings, so any new or revised
rating makes the next request recompute it.
"""
import logging
from collections import defaultdict

import numpy as np
from django.core.cache import cache
from django.utils import timezone

from rating.models import Campaign, CampaignItem
from rating.rubric_files import LEVEL_FOR_KIND
from results import services as results_services

from . import selectors

logger = logging.getLogger(__name__)

# The results app's figures, so the API, the datasheet and the results page give the same interval
# for the same ratings whether or not a snapshot exists yet.
DEFAULT_N_BOOT = results_services.N_BOOT
MAX_N_BOOT = 2000
CACHE_SECONDS = 24 * 3600
SEED = results_services.SEED


def _cache_key(campaign: Campaign, n_boot: int) -> str:
    from results.selectors import ratings_fingerprint

    return f"api:agreement:v1:{campaign.pk}:{n_boot}:{ratings_fingerprint(campaign.pk)[:32]}"


def _precomputed(campaign: Campaign):
    """The results app's newest agreement snapshot, or None when there is none or it is stale."""
    from results import selectors as results_selectors

    try:
        return results_selectors.precomputed_agreement(campaign)
    except Exception:  # noqa: BLE001 - a broken precomputed table must not break the API
        logger.exception("Precomputed agreement for campaign %s could not be read; computing it", campaign.pk)
        return None


def axis_level(axis) -> str:
    return axis.agreement_level or LEVEL_FOR_KIND.get(axis.kind, "interval")


def compute_campaign_agreement(campaign: Campaign, n_boot: int = DEFAULT_N_BOOT) -> list[dict]:
    from results.stats import compute_agreement

    rows = defaultdict(list)
    for axis_key, conv_id, rater, value, submitted_at in selectors.agreement_inputs(campaign):
        rows[axis_key].append((conv_id, rater, value, submitted_at))
    # One column per rater of the campaign (same order on every axis), one row per rated conversation.
    raters = sorted({r[1] for axis_rows in rows.values() for r in axis_rows})
    rater_col = {r: i for i, r in enumerate(raters)}
    gold = {
        item.conversation_id: item.gold_scores
        for item in CampaignItem.objects.filter(campaign=campaign, is_gold=True).only("conversation_id", "gold_scores")
    }
    out = []
    for axis in selectors.rated_axes(campaign):
        axis_rows = rows.get(axis.key, [])
        units = sorted({r[0] for r in axis_rows})
        unit_row = {u: i for i, u in enumerate(units)}
        matrix = np.full((len(units), len(raters)), np.nan)
        times = np.full(matrix.shape, np.nan)
        for conv_id, rater, value, submitted_at in axis_rows:
            matrix[unit_row[conv_id], rater_col[rater]] = value
            if submitted_at is not None:
                times[unit_row[conv_id], rater_col[rater]] = submitted_at.timestamp()
        gold_vector = np.array(
            [float(gold[u][axis.key]) if u in gold and _is_number(gold[u].get(axis.key)) else np.nan for u in units]
        )
        level = axis_level(axis)
        categories = [float(v) for v in axis.allowed_values()] or None
        statistics = compute_agreement(
            matrix, level, categories, n_boot=n_boot, seed=SEED, gold=gold_vector if gold else None,
            timestamps=times, rater_ids=raters,
        )
        out.append({"axis": axis.key, "name": axis.name, "level": level, "statistics": statistics})
    return out


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def campaign_agreement(campaign: Campaign, n_boot: int | None = None) -> dict:
    """Agreement per axis. Without an explicit n_boot (or with the snapshot's), the results app's
    current snapshot is served when there is one; otherwise it is computed and cached in Redis."""
    rubric = campaign.rubric
    base = {
        "campaign": campaign.pk,
        "rubric": {"id": rubric.pk, "slug": rubric.slug, "version": rubric.version, "name": rubric.name},
    }
    stored = _precomputed(campaign)
    if stored is not None and n_boot in (None, stored.get("n_boot")):
        return {**base, "source": "precomputed", **stored}
    n_boot = DEFAULT_N_BOOT if n_boot is None else n_boot
    key = _cache_key(campaign, n_boot)
    cached = cache.get(key)
    if cached is not None:
        return {**base, "source": "cache", **cached}
    payload = {"computed_at": timezone.now(), "n_boot": n_boot, "seed": SEED,
               "axes": compute_campaign_agreement(campaign, n_boot)}
    cache.set(key, payload, CACHE_SECONDS)
    return {**base, "source": "computed", **payload}


def agreement_summary(agreement: dict) -> list[dict]:
    """The headline figures per axis (for the datasheet)."""
    summary = []
    for axis in agreement["axes"]:
        stats = axis.get("statistics") or {}
        alpha = stats.get("krippendorff_alpha") or {}
        ac1 = stats.get("gwet_ac1") or {}
        exact = stats.get("percent_exact_agreement") or {}
        summary.append({
            "axis": axis["axis"],
            "level": axis["level"],
            "n_units": stats.get("n_units"),
            "n_pairable_units": stats.get("n_pairable_units"),
            "n_raters": stats.get("n_raters"),
            "krippendorff_alpha": alpha.get("alpha"),
            "alpha_ci_low": alpha.get("ci_low"),
            "alpha_ci_high": alpha.get("ci_high"),
            "gwet_ac1": ac1.get("coefficient"),
            "percent_exact_agreement": exact.get("value"),
        })
    return summary
