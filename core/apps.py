from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom layer: Redis access, admin base classes, health check and deploy checks.

    It imports no other app of the platform; every other app may import it."""
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from core import checks  # noqa: F401  (registers the deploy checks)
