"""Callbacks the apps above judging register to hear that a judge run finished (or its scores changed).

Judging may not import the apps that read its scores (results compares the judge with the clinicians),
so they register here, in their AppConfig.ready(), and judging calls `judge_run_finished(run_id)` when
a run reaches its final status (done, finished with failures, cancelled) or a retry changed its scores.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction

JudgeRunFinished = Callable[[int], object]

_listeners: list[JudgeRunFinished] = []


def on_judge_run_finished(listener: JudgeRunFinished) -> JudgeRunFinished:
    """Register listener(run_id), called once the run's final status has committed."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def judge_run_finished(run_id: int) -> None:
    """Tell the listeners when the current transaction commits (at once outside a transaction). robust: a
    listener's failure is logged by Django, never turned into a failure of the run's own task."""
    for listener in list(_listeners):
        transaction.on_commit(partial(listener, run_id), robust=True)
