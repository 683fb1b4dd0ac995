from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "results"
    verbose_name = "Agreement and results"

    def ready(self):
        from rating.events import on_ratings_changed

        from .services import schedule_recompute

        # Every submitted or revised rating schedules a (debounced) recomputation of its campaign.
        on_ratings_changed(schedule_recompute)
