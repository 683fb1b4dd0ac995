"""Extension points for the apps above rating, which rating itself may not import.

An app that gives some campaigns a page of its own (judging's validation mode) registers a resolver in
its AppConfig.ready(). The rating views ask `assignment_page` before showing or saving a rating: a
claimed assignment is sent to its own page, and rating's save and submit refuse it, so no
rating.Rating is ever written for it. Resolvers must not query the database (they run on the rater's
hot path): they decide from the campaign row the view already holds.
"""
from __future__ import annotations

from collections.abc import Callable

from .models import Assignment

AssignmentPageResolver = Callable[[Assignment], "str | None"]

_resolvers: list[AssignmentPageResolver] = []


def register_assignment_page(resolver: AssignmentPageResolver) -> None:
    """Register `resolver(assignment) -> URL or None` (once; ready() may run more than once in tests)."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def assignment_page(assignment: Assignment) -> str | None:
    """The URL of the page that owns this assignment, when it is not the rating page."""
    for resolver in _resolvers:
        url = resolver(assignment)
        if url:
            return url
    return None
