"""Queries per request on the rater's hot path stay a small constant, whatever the campaign's size or progress.

"next" and "submit" are measured through the test client (middleware, session and auth included) on a
campaign part-way through (started and fresh conversations both exist), then on one ten times the size and
further along: the count must be the same."""
import re

import pytest
from django.db import connection
from django.http import HttpRequest
from django.urls import reverse

from rating import assignment as assigning
from rating import services
from rating.models import Assignment
from tests.factories import PASSWORD
from tests.rating.rating_support import build_campaign, full_values

# Exact, through the test client (middleware, session and auth included; the session is read from Redis,
# SESSION_ENGINE cached_db). 5 for next = the user; the transaction's SAVEPOINT (BEGIN outside tests); one
# round trip for the rater's advisory lock, the campaign FOR SHARE, and then (a snapshot after both locks)
# the campaign with its roster, the rater's own rows, the index walk for every candidate and the started
# ones' partners with the shared counts; one for the item's SAVEPOINT, its row lock (SKIP LOCKED) and then
# its rows (the recount after the lock) with, in that statement, the INSERT of the assignment and its rating
# when a place is free; RELEASE (COMMIT).
# 5 for submit = the user; SAVEPOINT; one round trip for the advisory lock, the campaign FOR SHARE, the item
# FOR NO KEY UPDATE (each found from the assignment's id and the rater, so another rater's id locks and
# returns nothing: no separate look-up of the assignment first), the rating FOR NO KEY UPDATE and then the
# campaign with its roster, the fresh assignment and the rating with its axes, scores and notes; one for
# the scores' INSERT, the rating's and the assignment's UPDATEs (the lease restarted) and the audit event;
# RELEASE (COMMIT).
NEXT_QUERIES = 5
SUBMIT_QUERIES = 5


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


def _count_queries(client, num_queries, n_items, n_done):
    campaign, raters = build_campaign(n_items=n_items, n_raters=5, k=3)
    _progress(campaign, raters, n_done)
    client.login(request=HttpRequest(), username=raters[0].username, password=PASSWORD)
    values = {**full_values(campaign), "then": "stop"}
    # One cycle first: a connection PREPAREs the hot path's statements when it first runs them
    # (core/prepared.py), once; what is counted is every request after that.
    client.post(reverse("rating:submit", args=[_next(client, campaign)]), values)
    with num_queries(NEXT_QUERIES) as next_queries:
        pk = _next(client, campaign)
    with num_queries(SUBMIT_QUERIES) as submit_queries:
        response = client.post(reverse("rating:submit", args=[pk]), values)
    assert response.status_code == 302
    assert Assignment.objects.get(pk=pk).status == Assignment.Status.SUBMITTED
    # Prepared once: the counted requests only EXECUTE (nothing is planned again per request).
    counted = [q["sql"] for q in [*next_queries.captured_queries, *submit_queries.captured_queries]]
    assert not [sql for sql in counted if sql.startswith("PREPARE")]
    assert sum(sql.count("EXECUTE mhsd_") for sql in counted) >= 6
    client.logout()
    return len(next_queries), len(submit_queries)


@pytest.mark.django_db
def test_next_and_submit_use_a_small_number_of_queries_that_does_not_grow_with_the_campaign(
        client, django_assert_num_queries):
    small = _count_queries(client, django_assert_num_queries, n_items=12, n_done=4)
    large = _count_queries(client, django_assert_num_queries, n_items=120, n_done=40)
    assert small == large == (NEXT_QUERIES, SUBMIT_QUERIES)


@pytest.mark.django_db
def test_sessions_read_from_redis_still_end_at_sign_out_and_survive_a_redis_flush(client):
    """SESSION_ENGINE cached_db: the hot path reads the session without a query, but the session stays
    server-side, so signing out ends it for every copy of the cookie (signed-cookie sessions could not)."""
    from django.core.cache import cache
    from django.test import Client

    campaign, raters = build_campaign(n_items=2, n_raters=2, k=1)
    client.login(request=HttpRequest(), username=raters[0].username, password=PASSWORD)
    copy = Client()
    copy.cookies["sessionid"] = client.cookies["sessionid"].value
    cache.clear()  # Redis flushed: the session is read back from PostgreSQL
    assert copy.get(reverse("rating:home")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    response = copy.get(reverse("rating:home"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_the_hot_paths_prepared_statements_are_planned_once_per_connection_not_per_run(
        client, django_assert_num_queries):
    """The settings' plan_cache_mode=force_generic_plan: without it PostgreSQL plans each statement afresh
    for its first five runs on every connection (a slow "next" after each reconnect)."""
    _count_queries(client, django_assert_num_queries, n_items=12, n_done=4)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE name LIKE 'mhsd%%'")
        plans = {name: (generic, custom) for name, generic, custom in cursor.fetchall()}
    for statement in ("mhsd_session_user", "mhsd_next_", "mhsd_try_skip", "mhsd_hold_", "mhsd_submit_"):
        assert any(name.startswith(statement) and generic >= 2 for name, (generic, _) in plans.items()), statement
    assert {name: custom for name, (_, custom) in plans.items() if custom} == {}
