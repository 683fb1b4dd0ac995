"""Queries per request on the rater's hot path stay a small constant, whatever the campaign's size or progress.

"next" and "submit" are measured through the test client (middleware, session and auth included) on a
campaign part-way through (started and fresh conversations both exist), then on one ten times the size and
further along: the count must be the same."""
import re

import pytest
from django.http import HttpRequest
from django.urls import reverse

from rating import assignment as assigning
from rating import services
from rating.models import Assignment
from tests.factories import PASSWORD
from tests.rating.rating_support import build_campaign, full_values

# Measured: 17 for next = session, user, campaign + roster (the view), expired-lease reclaim; BEGIN, advisory
# lock, campaign FOR SHARE with the roster, the rater's own rows, one index walk for every candidate, the
# started ones' partners with the shared counts; SAVEPOINT, item lock, the item's rows (the recount after the
# lock), INSERT assignment, INSERT rating, RELEASE, COMMIT.
# 29 for submit = session, user, assignment; the draft save (its own locked transaction: 12) and the
# submission (another: 14, the completeness check under the lock reading what the audit snapshot needs).
NEXT_MAX = 17
SUBMIT_MAX = 29


def _next(client, campaign) -> int:
    response = client.post(reverse("rating:next", args=[campaign.pk]))
    assert response.status_code == 302
    match = re.search(r"/rate/a/(\d+)/$", response["Location"])
    assert match, response["Location"]
    return int(match.group(1))


def _progress(campaign, raters, n):
    """`n` submitted ratings spread over the other raters, so started and fresh items both exist."""
    for i in range(n):
        rater = raters[1 + i % (len(raters) - 1)]
        a = assigning.next_assignment(campaign, rater)
        services.submit_rating(a, rater, services.changes_from_post(full_values(campaign)))


def _count_queries(client, max_queries, n_items, n_done):
    campaign, raters = build_campaign(n_items=n_items, n_raters=5, k=3)
    _progress(campaign, raters, n_done)
    client.login(request=HttpRequest(), username=raters[0].username, password=PASSWORD)
    values = {**full_values(campaign), "then": "stop"}
    with max_queries(NEXT_MAX) as next_queries:
        pk = _next(client, campaign)
    with max_queries(SUBMIT_MAX) as submit_queries:
        response = client.post(reverse("rating:submit", args=[pk]), values)
    assert response.status_code == 302
    assert Assignment.objects.get(pk=pk).status == Assignment.Status.SUBMITTED
    client.logout()
    return len(next_queries), len(submit_queries)


@pytest.mark.django_db
def test_next_and_submit_use_a_small_number_of_queries_that_does_not_grow_with_the_campaign(
        client, django_assert_max_num_queries):
    small = _count_queries(client, django_assert_max_num_queries, n_items=12, n_done=4)
    large = _count_queries(client, django_assert_max_num_queries, n_items=120, n_done=40)
    assert small == (NEXT_MAX, SUBMIT_MAX), f"queries (next, submit) are now {small}: update the ceilings"
    assert large == small, f"queries (next, submit) grew from {small} to {large}"
