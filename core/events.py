"""A small hook that lets a lower app tell the apps above it that something happened, without importing
them: the apps above register listeners in their AppConfig.ready(), and the owner's `send` runs them
once the current transaction commits (at once outside one)."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction


class Event:
    def __init__(self, name: str):
        self.name = name
        self._listeners: list[Callable] = []

    def connect(self, listener: Callable) -> Callable:
        """Register listener(*args); registering the same one twice keeps one."""
        if listener not in self._listeners:
            self._listeners.append(listener)
        return listener

    @property
    def listeners(self) -> tuple:
        return tuple(self._listeners)

    def send(self, *args) -> None:
        """Run the listeners after commit. robust: a listener's failure is logged by Django, never turned
        into an error of the work that has already been saved (a rater's submission, a judge run)."""
        for listener in list(self._listeners):
            transaction.on_commit(partial(listener, *args), robust=True)
