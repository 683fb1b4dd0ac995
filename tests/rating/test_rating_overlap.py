"""Pair overlap under realistic arrival patterns, with the real handout code (rating/assignment.py).

Each rater rates their share (about N * k / R conversations) when their shift comes, submitting each one;
whatever is still open at the end is finished by whoever asks. The floor asserted is the one the module
docstring states: the smallest pair overlap is at least half the average E = N k (k - 1) / (R (R - 1)).
"""
import math
from collections import Counter

import pytest

from rating import assignment as assigning
from rating import services
from rating.models import Assignment
from rating.selectors import pair_overlap
from tests.rating.rating_support import build_campaign, full_values


def _simulate(campaign, raters, shifts):
    values = services.changes_from_post(full_values(campaign))
    share = math.ceil(campaign.items.count() * campaign.overlap_k / len(raters))
    done = Counter()

    def rate_one(rater) -> bool:
        a = assigning.next_assignment(campaign, rater)
        if a is None:
            return False
        services.submit_rating(a, rater, values)
        done[rater.pk] += 1
        return True

    for shift in shifts:
        working = [raters[i] for i in shift]
        while working:  # the shift's raters take turns until each has rated their share
            for rater in list(working):
                if done[rater.pk] >= share or not rate_one(rater):
                    working.remove(rater)
    while any([rate_one(rater) for rater in raters]):  # leftovers: anyone finishes
        pass
    return done


SCENARIOS = {
    "all at once": lambda r: [list(range(r))],
    "two shifts": lambda r: [list(range(r // 2)), list(range(r // 2, r))],
    "three shifts": lambda r: [list(range(i, r, 3)) for i in range(3)],
    "one after another": lambda r: [[i] for i in range(r)],
}


@pytest.mark.django_db
@pytest.mark.parametrize(("n_items", "n_raters", "k", "scenario"), [
    (60, 6, 2, "all at once"),
    (60, 6, 2, "two shifts"),
    (60, 6, 2, "three shifts"),
    (60, 6, 2, "one after another"),
    (40, 6, 3, "all at once"),
    (40, 6, 3, "two shifts"),
])
def test_smallest_pair_overlap_stays_above_half_the_average(n_items, n_raters, k, scenario):
    campaign, raters = build_campaign(n_items=n_items, n_raters=n_raters, k=k)
    done = _simulate(campaign, raters, SCENARIOS[scenario](n_raters))

    per_item = Counter(Assignment.objects.filter(campaign=campaign, status="submitted")
                       .values_list("item_id", flat=True))
    assert len(per_item) == n_items and set(per_item.values()) == {k}, "every conversation ends with k ratings"
    assert sum(done.values()) == n_items * k
    overlap = pair_overlap(campaign)
    expected = n_items * k * (k - 1) / (n_raters * (n_raters - 1))
    assert overlap.expected == round(expected, 1)
    assert overlap.pairs_with_none == 0
    assert overlap.minimum >= expected / 2, (scenario, overlap)
