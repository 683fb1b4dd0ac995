from django.apps import AppConfig


class StudyDataConfig(AppConfig):
    """Conversations in (JSONL import) and scored campaigns out (export formats, datasheet), with the
    browser pages for both. The REST API serves the same functions. Not called `datasets`: that name
    belongs to the Hugging Face library the Parquet export is checked against."""

    name = "study_data"
    verbose_name = "Imports and exports"
