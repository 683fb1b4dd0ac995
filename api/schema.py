"""OpenAPI helpers: the error component and an AutoSchema that documents it on every operation."""
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated in the body.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. not_found, invalid, throttled.")
    message = serializers.CharField(help_text="A sentence for people.")
    details = serializers.JSONField(
        required=False, help_text="Field errors, or for imports {'errors': [{'line', 'field', 'message'}]}."
    )


class ErrorSerializer(serializers.Serializer):
    """The one JSON error shape of the API (api/errors.py)."""

    error = ErrorBodySerializer()


# Every operation can answer with these; 413 only where a body can be too large.
COMMON_ERRORS = {
    "400": "The request or its query parameters were not valid.",
    "401": "No credentials, or an unknown or revoked token.",
    "403": "Your role may not do this.",
    "404": "No such object (or not visible to you).",
    "429": "Too many requests; retry after the time in Retry-After.",
}


class ApiAutoSchema(AutoSchema):

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {**COMMON_ERRORS, **getattr(self.view, "extra_error_responses", {})}
        for code, description in errors.items():
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = description
                responses[code] = body
        return responses
