"""Agreement per campaign and axis for the API and the datasheet.

The statistics are the pure functions of results.stats. When the results app holds a current
snapshot for the campaign (results.models.AgreementSnapshot, recomputed after ratings change), that
is served; otherwise agreement is computed on request with a modest bootstrap and cached in Redis
under a key that includes the fingerprint of the campaign's submitted ratings, so any new or revised
rating makes the next request recompute it.
"""
import logging

from django.core.cache import cache
from django.utils import timezone

from rating.models import Campaign
from results import services as results_services
from results.nominal import add_nominal_statistics

logger = logging.getLogger(__name__)

# The results app's figures, so the API, the datasheet and the results page give the same interval
# for the same ratings whether or not a snapshot exists yet.
DEFAULT_N_BOOT = results_services.N_BOOT
MAX_N_BOOT = 2000
CACHE_SECONDS = 24 * 3600
SEED = results_services.SEED


def _cache_key(campaign: Campaign, n_boot: int) -> str:
    from results.selectors import ratings_fingerprint

    return f"api:agreement:v2:{campaign.pk}:{n_boot}:{ratings_fingerprint(campaign.pk)[:32]}"


def _precomputed(campaign: Campaign):
    """The results app's newest agreement snapshot, or None when there is none or it is stale."""
    from results import selectors as results_selectors

    try:
        return results_selectors.precomputed_agreement(campaign)
    except Exception:  # noqa: BLE001 - a broken precomputed table must not break the API
        logger.exception("Precomputed agreement for campaign %s could not be read; computing it", campaign.pk)
        return None


def compute_campaign_agreement(campaign: Campaign, n_boot: int = DEFAULT_N_BOOT) -> list[dict]:
    """Agreement per rated axis from the results app's own matrices: the same conversations, the same
    rater order and pseudonyms, gold and submission times as a snapshot, so a figure computed here
    equals the snapshot's for the same ratings, seed and resamples."""
    from results import selectors as results_selectors
    from results.stats import compute_agreement

    data = results_selectors.campaign_ratings(campaign)
    references = results_selectors.nominal_references(campaign, data)
    out = []
    for axis in data.axes:
        level = results_selectors.axis_level(axis)
        statistics = compute_agreement(
            data.matrices[axis.key], level, results_selectors.axis_categories(axis), n_boot=n_boot, seed=SEED,
            gold=data.gold.get(axis.key), timestamps=data.times_for(axis.key), rater_ids=data.rater_labels,
        )
        if axis.is_nominal:
            statistics = add_nominal_statistics(statistics, axis, data.matrices[axis.key], references.get(axis.key),
                                                n_boot, SEED)
        out.append({"axis": axis.key, "name": axis.name, "level": level, "statistics": statistics})
    return out


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
