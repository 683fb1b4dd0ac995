"""Callbacks the apps above rating register to hear that a campaign's ratings changed.

Rating may not import the apps that read its ratings (results recomputes agreement from them), so
they register here, in their AppConfig.ready(), and rating runs them after its transaction commits.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction

RatingsChanged = Callable[[int], None]

_listeners: list[RatingsChanged] = []


def on_ratings_changed(listener: RatingsChanged) -> RatingsChanged:
    """Register listener(campaign_id), called once a submission or revision has committed."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def ratings_changed(campaign_id: int) -> None:
    """Tell the listeners when the current transaction commits. robust: a listener's failure is
    logged by Django, never turned into an error for the rater whose rating has already been saved."""
    for listener in list(_listeners):
        transaction.on_commit(partial(listener, campaign_id), robust=True)
