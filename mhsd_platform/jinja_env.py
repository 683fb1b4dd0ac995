"""The Jinja2 engine's environment (settings.TEMPLATES): Django's number filter, so a number reads the same
in both engines' markup (rating/templatetags/rating_axes.py says why the rating page uses both)."""
from django.template.defaultfilters import floatformat
from jinja2 import Environment


def environment(**options) -> Environment:
    env = Environment(**options)  # noqa: S701 - Django's Jinja2 backend passes autoescape=True
    env.filters["floatformat"] = floatformat
    return env
