"""Stored tables and figures as the pages show and download them (shared by the results and judge pages)."""
import csv

from django.http import HttpResponse


def for_page(table: dict) -> dict:
    """The stored table with each value paired with its column's format, for the template."""
    fmts = [c["fmt"] for c in table["columns"]]
    return {**table, "cells": [list(zip(row, fmts, strict=False)) for row in table["rows"]]}


def table_csv_response(data: dict, filename: str) -> HttpResponse:
    """A stored table as a CSV download (floats at full precision, empty cells for missing values)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([c["label"] for c in data["columns"]])
    for row in data["rows"]:
        writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row])
    return response


def svg_response(svg: str, filename: str, download: bool) -> HttpResponse:
    """A drawn figure; with `download`, as an attachment named `filename`."""
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    if download:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
