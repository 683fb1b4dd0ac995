"""A stored result table (results.reporting.table) as a CSV download."""
import csv

from django.http import HttpResponse


def table_csv_response(data: dict, filename: str, *, float_repr: bool = False) -> HttpResponse:
    """Header row from the column labels; None as an empty cell; floats in full (repr) when asked."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([c["label"] for c in data["columns"]])
    for row in data["rows"]:
        writer.writerow(["" if v is None else (repr(v) if float_repr and isinstance(v, float) else v) for v in row])
    return response
