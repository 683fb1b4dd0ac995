"""The API's JSON parser: DRF's, plus a refusal of text PostgreSQL cannot store (core/text.py), so a
NUL or a lone surrogate anywhere in a body is a 400 naming the JSON field, before any view runs."""
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser

from core.text import find_unstorable


class StorableJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        problems = find_unstorable(data)
        if problems:
            raise ValidationError({path or "(body)": [reason] for path, reason in problems})
        return data
