"""The rating page's hot loops, rendered by the Jinja2 engine from Django templates:

- {% rating_axes axes page save_url %}: the score fields (templates/jinja2/rating/axes.html). Every axis,
  every scale point, a dozen attributes each: Django's template engine took 5.3 ms of the page's 9.3 ms of
  rendering for them, Jinja2 1.2 ms for the same markup.
- {% rating_transcript page save_url %}: the transcript with the rater's notes (transcript.html), the
  loop that grows with the conversation: 1.0 ms of Django rendering for six messages.
- {% rating_message_body m page %}: one message's body (message_body.html), for the judge validation
  page's own transcript, so both pages show a message from the same markup.

The rest of both pages stays Django templates.
"""
from django import template
from django.template import engines
from django.utils.safestring import SafeString

register = template.Library()


def _render(name: str, context: dict) -> SafeString:
    # Jinja2 keeps its compiled templates (and, with DEBUG, reloads an edited file). It autoescapes every
    # value (the engine's default here), so its output is HTML as Django's is.
    return SafeString(engines["jinja2"].get_template(name).render(context))


@register.simple_tag
def rating_axes(axes, page, save_url) -> SafeString:
    return _render("rating/axes.html", {"axes": axes, "page": page, "save_url": save_url})


@register.simple_tag
def rating_transcript(page, save_url) -> SafeString:
    return _render("rating/transcript.html", {"page": page, "save_url": save_url})


@register.simple_tag
def rating_message_body(message, page) -> SafeString:
    return _render("rating/message_body.html", {"m": message, "row": None, "page": page})
