"""Cursor pagination: stable under inserts and O(page) however deep the client pages."""
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("id",)

    def get_ordering(self, request, queryset, view):
        # The view validated ?ordering= against its allowed fields (see filters); "id" breaks ties.
        chosen = getattr(view, "cursor_ordering", None)
        if callable(chosen):
            chosen = chosen()
        return tuple(chosen) if chosen else self.ordering
