from django.apps import AppConfig


class ProbesConfig(AppConfig):
    """Safety probes (Moore et al., FAccT 2025): the stigma battery and interjection probes, run against
    any model configuration, scored, and reported per model and condition.

    Sits between judging and results: it uses generation's LLM client and models, rating's campaigns
    for clinician verification; results, datasets and the API may read it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "probes"
    verbose_name = "Safety probes"

    def ready(self):
        # The offline simulator answers probe prompts too (deterministically, from their content).
        from generation.medagent.simulator import register_reply_handler

        from .simulator import answer_probe_prompt

        register_reply_handler(answer_probe_prompt)
