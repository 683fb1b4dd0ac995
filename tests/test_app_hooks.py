"""How lower apps reach higher ones without importing them: the ratings-changed hook that results
registers, and tasks enqueued by their registered names."""
import pytest

from mhsd_platform.celery import app


def test_results_listens_for_changed_ratings_and_finished_judge_runs():
    from judging import events as judging_events
    from rating import events
    from results.services import judge_run_finished, schedule_recompute

    assert schedule_recompute in events._ratings_changed.listeners
    assert judge_run_finished in judging_events._judge_run_finished.listeners


@pytest.mark.django_db
def test_listeners_run_after_commit_with_the_campaign_id(monkeypatch, django_capture_on_commit_callbacks):
    from rating import events

    heard = []
    monkeypatch.setattr(events._ratings_changed, "_listeners", [])
    events.on_ratings_changed(heard.append)
    events.on_ratings_changed(heard.append)  # registering twice is harmless
    with django_capture_on_commit_callbacks(execute=False) as pending:
        events.ratings_changed(7)
        assert heard == []  # nothing before the commit
    for callback in pending:
        callback()
    assert heard == [7]


def test_tasks_enqueued_by_name_are_registered_under_that_name():
    from generation import services as generation_services
    from judging import services as judging_services
    from results import services as results_services

    app.loader.import_default_modules()
    for name in (generation_services.GENERATE_CONVERSATION_TASK, results_services.RECOMPUTE_TASK,
                 judging_services.JUDGE_ITEM_TASK, judging_services.JUDGE_DISPATCH_TASK):
        assert name in app.tasks, name
