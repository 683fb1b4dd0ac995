"""Queries per request on the rater's hot path stay a small constant, whatever the campaign's size or progress.

"next" and "submit" are measured through the test client (middleware, session and auth included) on a
campaign part-way through, then again after it grew: the count must not grow with items or assignments."""
import re

import pytest
from django.http import HttpRequest
from django.urls import reverse

from rating import assignment as assigning
from rating import services
from rating.models import Assignment
from tests.factories import PASSWORD
from tests.rating.rating_support import build_campaign, full_values

# Measured: 29 and 44 (session, auth, advisory lock, campaign FOR SHARE, candidates, item lock and recount,
# insert; submit = the draft save and the submission, each in its own locked transaction, plus the audit row).
NEXT_MAX = 30
SUBMIT_MAX = 45


def _next(client, campaign):
    response = client.post(reverse("rating:next", args=[campaign.pk]))
    assert response.status_code == 302
    match = re.search(r"/rate/a/(\d+)/$", response["Location"])
    assert match, response["Location"]
    return Assignment.objects.get(pk=int(match.group(1)))


def _progress(campaign, raters, n):
    """`n` submitted ratings spread over the other raters, so started and fresh items both exist."""
    for i in range(n):
        rater = raters[1 + i % (len(raters) - 1)]
        a = assigning.next_assignment(campaign, rater)
        services.submit_rating(a, rater, services.changes_from_post(full_values(campaign)))


@pytest.mark.django_db
@pytest.mark.parametrize("n_items,n_done", [(12, 4), (60, 30)])
def test_next_and_submit_use_a_bounded_number_of_queries(client, django_assert_max_num_queries, n_items, n_done):
    campaign, raters = build_campaign(n_items=n_items, n_raters=5, k=3)
    _progress(campaign, raters, n_done)
    client.login(request=HttpRequest(), username=raters[0].username, password=PASSWORD)
    with django_assert_max_num_queries(NEXT_MAX):
        a = _next(client, campaign)
    with django_assert_max_num_queries(SUBMIT_MAX):
        response = client.post(reverse("rating:submit", args=[a.pk]), {**full_values(campaign), "then": "stop"})
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.status == Assignment.Status.SUBMITTED
