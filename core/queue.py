"""Enqueueing Celery tasks by name.

An app's tasks module imports its services (a task is a thin wrapper around one), so its services
enqueue work by the task's registered name instead of importing the tasks module back.
"""
from celery import current_app


def enqueue(task_name: str, *args, **options):
    """Queue the task `task_name` with positional `args`; `options` are apply_async's (countdown,
    retry, ...). Where the task is registered (workers, and the web process once Celery has loaded the
    apps' tasks) this is the task's own apply_async; elsewhere the same message is sent by name."""
    return current_app.signature(task_name, args=args).apply_async(**options)
