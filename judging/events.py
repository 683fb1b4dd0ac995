"""The hook the apps above judging register to hear that a judge run finished (or its scores changed).

Judging may not import the apps that read its scores (results compares the judge with the clinicians),
so they register here, in their AppConfig.ready(), and judging calls `judge_run_finished(run_id)` when
a run reaches its final status (done, finished with failures, cancelled) or a retry changed its scores;
listeners run once that has committed.
"""
from core.events import Event

_judge_run_finished = Event("judge_run_finished")

on_judge_run_finished = _judge_run_finished.connect
judge_run_finished = _judge_run_finished.send
