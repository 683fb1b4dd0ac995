"""Browser pages for exports and imports (mounted at /exports/). The export links are the streamed API
endpoints (session-authenticated), and the import form calls the same import service as
POST /api/v1/conversations/import."""
from django import forms
from django.shortcuts import render

from accounts.access import capability_required
from accounts.roles import Capability

from . import export, importer
from .selectors import campaign_queryset


@capability_required(Capability.EXPORT_DATA)
def exports(request):
    campaigns = campaign_queryset().order_by("-created_at")
    return render(request, "study_data/exports.html", {
        "campaigns": campaigns, "formats": export.EXPORT_FORMATS, "format_names": export.FORMAT_NAMES,
    })


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A .jsonl file: one conversation per line in the OpenAI chat format.")
    source = forms.CharField(
        max_length=100, required=False, initial=importer.DEFAULT_SOURCE,
        help_text="Source label for lines that do not name one.",
    )
    on_duplicate = forms.ChoiceField(
        choices=[("error", "Reject the file if any conversation was imported before"),
                 ("skip", "Skip conversations imported before, import the rest")],
        initial="error",
    )


@capability_required(Capability.IMPORT_CONVERSATIONS)
def import_page(request):
    context = {"limit_mb": importer.max_import_bytes() / (1024 * 1024), "example": EXAMPLE}
    status = 200
    if request.method == "POST":
        try:
            importer.check_declared_length(request.META)  # before the body is read at all
        except importer.ImportRejected as exc:
            context.update(form=ImportForm(), rejected={"message": exc.message})
            return render(request, "study_data/import.html", context, status=exc.status)
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                result = importer.import_conversations(
                    request.user, importer.read_upload(form.cleaned_data["file"]),
                    default_source=form.cleaned_data["source"] or importer.DEFAULT_SOURCE,
                    on_duplicate=form.cleaned_data["on_duplicate"],
                )
            except importer.ImportRejected as exc:
                context["rejected"] = {"message": exc.message, "errors": [e.as_dict() for e in exc.errors]}
                status = exc.status
            else:
                context["result"] = result.as_dict()
                ids = [c["id"] for c in result.imported]
                context["id_range"] = (min(ids), max(ids)) if ids else None
                form = ImportForm()
        else:
            status = 400
    else:
        form = ImportForm()
    context["form"] = form
    return render(request, "study_data/import.html", context, status=status)


EXAMPLE = (
    '{"external_id": "chat-0001", "source": "clinic-bot", "model": "acme/bot-2", '
    '"ground_truth_diagnosis": "Generalised anxiety disorder", "messages": ['
    '{"role": "system", "content": "You are a supportive assistant."}, '
    '{"role": "user", "content": "I have been worrying about everything for months."}, '
    '{"role": "assistant", "content": "That sounds exhausting. What worries you most?"}]}'
)
