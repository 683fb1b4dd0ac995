from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo loader (`manage.py seed_demo`): the top layer, which may import every other app."""
    name = "demo"
    verbose_name = "Demo data"
