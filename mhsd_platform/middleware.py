"""Query strings are read by every page and API filter; one NUL in one would reach a database query
and end as a 500. Refuse it here, once, naming the parameter (core/text.py decides what is unstorable)."""
from django.http import HttpResponseBadRequest
from django.utils.html import escape

from api.errors import json_error
from core.text import unstorable


class RefuseUnstorableQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name, values in request.GET.lists():
            for text in (name, *values):
                reason = unstorable(text)
                if reason:
                    label = ascii(name)[1:-1]
                    message = f"Query parameter '{label}' {reason}."
                    if request.path.startswith("/api/"):
                        return json_error(400, "invalid", message, {label: [reason]})
                    return HttpResponseBadRequest(f"<h1>Bad request</h1><p>{escape(message)}</p>")
        return self.get_response(request)
