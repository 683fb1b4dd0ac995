"""One JSON error shape for every 4xx and 5xx of the API:

    {"error": {"status": 400, "code": "invalid", "message": "...", "details": {...}}}
"""
import logging

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def error_body(status: int, code: str, message: str, details=None) -> dict:
    body = {"status": status, "code": code, "message": message}
    if details not in (None, {}, []):
        body["details"] = details
    return {"error": body}


def _message_and_code(exc, data) -> tuple[str, str]:
    if isinstance(exc, exceptions.ValidationError):
        return "The request was not valid; see details.", "invalid"
    # DRF turns Django's Http404 and PermissionDenied into these; give them the same codes.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    code = codes if isinstance(codes, str) else "error"
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"]), code
    return str(data), code


def _request_error(exc):
    """Django refuses some requests with SuspiciousOperation (too many form fields, a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE, ...): they are the client's fault, so 4xx, never a 500."""
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(413, "too_large", "The request body is too large."), status=413)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response(error_body(400, "too_many_fields", str(exc)), status=400)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body(400, "bad_request", "The request was malformed."), status=400)
    return None


def exception_handler(exc, context):
    refused = _request_error(exc)
    if refused is not None:
        return refused
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected server error: log it with the traceback, answer in the same shape.
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(error_body(500, "server_error", "Internal server error."), status=500)
    message, code = _message_and_code(exc, response.data)
    details = response.data if isinstance(exc, exceptions.ValidationError) else None
    response.data = error_body(response.status_code, code, message, details)
    return response


def json_error(status: int, code: str, message: str, details=None) -> JsonResponse:
    """For plain Django views under /api/ (e.g. streamed exports) that sit outside DRF."""
    return JsonResponse(error_body(status, code, message, details), status=status)


__all__ = ["exception_handler", "json_error", "error_body", "Http404", "PermissionDenied"]


# Errors raised before or outside a DRF view (a rejected Host header, a failure in middleware) reach
# Django's error handlers; under /api/ they keep the API's one JSON shape instead of an HTML page.
_API_PREFIX = "/api/"


def _json_or(default_view, status: int, code: str, message: str):
    from django.http import JsonResponse

    def handler(request, *args, **kwargs):
        if request.path.startswith(_API_PREFIX):
            return JsonResponse(error_body(status, code, message), status=status)
        return default_view(request, *args, **kwargs)

    return handler


def _handlers():
    from django.views import defaults

    return {
        "handler400": _json_or(defaults.bad_request, 400, "bad_request", "The request could not be understood."),
        "handler403": _json_or(defaults.permission_denied, 403, "permission_denied", "Permission denied."),
        "handler404": _json_or(defaults.page_not_found, 404, "not_found", "Not found."),
        "handler500": _json_or(defaults.server_error, 500, "server_error",
                               "The server failed to answer; the error has been logged."),
    }


HANDLERS = _handlers()
handler400 = HANDLERS["handler400"]
handler403 = HANDLERS["handler403"]
handler404 = HANDLERS["handler404"]
handler500 = HANDLERS["handler500"]
