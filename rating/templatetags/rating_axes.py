"""{% rating_axes axes page save_url %}: the rating page's score fields, rendered by the Jinja2 engine.

The fields are the page's hot loop (every axis, every scale point, a dozen attributes each): Django's
template engine took 5.3 ms of the page's 9.3 ms of rendering for them, Jinja2 takes 1.2 ms for the same
markup (templates/jinja2/rating/axes.html). The rest of the page stays a Django template.
"""
from django import template
from django.template import engines
from django.utils.safestring import SafeString

register = template.Library()


def _axes_template():
    # Jinja2 keeps its compiled templates (and, with DEBUG, reloads an edited file).
    return engines["jinja2"].get_template("rating/axes.html")


@register.simple_tag
def rating_axes(axes, page, save_url) -> SafeString:
    # Jinja2 autoescapes every value (the engine's default here), so its output is HTML as Django's is.
    return SafeString(_axes_template().render({"axes": axes, "page": page, "save_url": save_url}))
