"""The Jinja2 engine's environment (settings.TEMPLATES): Django's number and line-break filters, so a value
reads the same in both engines' markup (rating/templatetags/rating_jinja.py says why the rating page uses both)."""
from django.template.defaultfilters import floatformat, linebreaksbr
from jinja2 import Environment


def environment(**options) -> Environment:
    env = Environment(**options)  # noqa: S701 - Django's Jinja2 backend passes autoescape=True
    env.filters["floatformat"] = floatformat
    env.filters["linebreaksbr"] = linebreaksbr  # escapes its input, then marks the result safe
    return env
