from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "results"
    verbose_name = "Agreement and results"

    def ready(self):
        from judging.events import on_judge_run_finished
        from rating.events import on_ratings_changed

        from .services import judge_run_finished, schedule_recompute

        # Every submitted or revised rating schedules a (debounced) recomputation of its campaign.
        on_ratings_changed(schedule_recompute)
        # A finished judge run does the same for every campaign whose conversations it scored.
        on_judge_run_finished(judge_run_finished)
