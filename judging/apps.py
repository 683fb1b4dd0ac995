from django.apps import AppConfig


class JudgingConfig(AppConfig):
    """LLM-as-judge: judge runs over a campaign's conversations and the judge's scores.

    Sits between rating (whose rubrics and campaigns it judges) and results (which compares the
    judge with the clinicians). Judge scores live here, never in rating.Rating, so a judge is
    never counted as a clinician."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "judging"
    verbose_name = "LLM judge"

    def ready(self):
        # Validation campaigns' assignments open on judging's page, not rating's (rating cannot import us).
        from rating.extensions import register_assignment_page

        from .validation import validation_page_url

        register_assignment_page(validation_page_url)
