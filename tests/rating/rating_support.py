"""Builders and checks shared by the rating tests."""
from collections import Counter
from itertools import combinations

from accounts.roles import Role
from rating.models import Assignment, PairShare
from tests.factories import make_campaign, make_conversation, make_job, make_user


def build_campaign(n_items=6, n_raters=3, k=2, lease_minutes=60, **extra):
    """A campaign of `n_items` finished conversations (one job) and `n_raters` raters."""
    job = make_job()
    raters = [make_user(Role.RATER) for _ in range(n_raters)]
    conversations = [make_conversation(job=job, n_messages=6) for _ in range(n_items)]
    campaign = make_campaign(raters=raters, conversations=conversations, k=k, lease_minutes=lease_minutes, **extra)
    return campaign, raters


def full_values(campaign) -> dict:
    """A complete, valid set of form values for every rated axis of the campaign's rubric."""
    data = {}
    for axis in campaign.rubric.axes.all():
        if axis.is_rated:
            data[f"value__{axis.key}"] = str(axis.allowed_values()[-1])
    return data


OCCUPYING = ("active", "submitted")


def shared_the_slow_way(campaign) -> Counter:
    """{(rater, partner): conversations both occupy} for every ordered pair, and (rater, rater): how many the
    rater occupies; what `_state_sql` used to compute with a join over everything the rater holds."""
    by_item: dict[int, list[int]] = {}
    for item_id, rater_id in Assignment.objects.filter(campaign=campaign, status__in=OCCUPYING).values_list(
            "item_id", "rater_id"):
        by_item.setdefault(item_id, []).append(rater_id)
    counts = Counter()
    for raters in by_item.values():
        for r in raters:
            counts[(r, r)] += 1
        for a, b in combinations(raters, 2):
            counts[(a, b)] += 1
            counts[(b, a)] += 1
    return counts


def shared_from_rows(campaign) -> Counter:
    """The same, from PairShare: a pair's count is the sum of its two raters' rows."""
    counts = Counter()
    for rater, partner, n in PairShare.objects.filter(campaign=campaign).values_list("rater_id", "partner_id",
                                                                                       "shared"):
        counts[(rater, partner)] += n
        if rater != partner:
            counts[(partner, rater)] += n
    return +counts  # pairs that share nothing (any more) drop out, as in the slow count


def assert_pair_shares_kept(campaign):
    assert shared_from_rows(campaign) == shared_the_slow_way(campaign)
