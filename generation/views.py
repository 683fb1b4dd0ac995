from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.access import capability_required
from accounts.roles import Capability

from . import local_llm, services
from .case_import import import_cases
from .forms import CaseImportForm, CaseReviewForm, JobLaunchForm, ModelConfigForm
from .models import CaseStudy, Conversation, GenerationJob, ModelConfig
from .selectors import generation_counts, job_progress


@capability_required(Capability.VIEW_GENERATION)
def overview(request):
    jobs = GenerationJob.objects.select_related("sensemaker_model")[:50]
    return render(request, "generation/overview.html", {"jobs": jobs, "counts": generation_counts()})


# --- jobs -----------------------------------------------------------------------------------------


@capability_required(Capability.LAUNCH_GENERATION)
def job_launch(request):
    form = JobLaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.launch_job(
                request.user,
                services.JobRequest(
                    name=data["name"], cases=list(data["cases"]), patient_model=data["patient_model"],
                    sensemaker_model=data["sensemaker_model"], helper_model=data["helper_model"],
                    traits=tuple(data["traits"]), literacies=tuple(data["literacies"]), seed=data["seed"],
                    max_concurrent_calls=data["max_concurrent_calls"],
                ),
            )
        except services.GenerationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Job launched: {job.conversations.count()} conversations queued.")
            if request.htmx:
                return HttpResponseClientRedirect(reverse("generation:job_detail", args=[job.pk]))
            return redirect("generation:job_detail", pk=job.pk)
    if request.htmx and request.method == "POST":
        # Only the form, errors included, replaces the one on the page; what the admin chose stays.
        return render(request, "generation/job_launch.html#launch-form", {"form": form})
    return render(request, "generation/job_launch.html", {"form": form})


@capability_required(Capability.VIEW_GENERATION)
def job_detail(request, pk):
    job = get_object_or_404(GenerationJob.objects.select_related("sensemaker_model", "created_by"), pk=pk)
    conversations = job.conversations.select_related("case", "persona").order_by("id")
    return render(
        request, "generation/job_detail.html",
        {"job": job, "progress": job_progress(job), "conversations": conversations},
    )


@capability_required(Capability.VIEW_GENERATION)
def job_progress_fragment(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    conversations = job.conversations.select_related("case", "persona").order_by("id")
    return render(request, "generation/_job_progress.html",
                  {"job": job, "progress": job_progress(job), "conversations": conversations})


@require_POST
@capability_required(Capability.LAUNCH_GENERATION)
def job_cancel(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    n = services.cancel_job(job, request.user)
    messages.success(request, f"Cancelled: {n} queued conversations stopped; running ones will finish.")
    return redirect("generation:job_detail", pk=pk)


@require_POST
@capability_required(Capability.LAUNCH_GENERATION)
def job_retry(request, pk):
    job = get_object_or_404(GenerationJob, pk=pk)
    n = services.retry_failed_conversations(job, request.user)
    messages.success(request, f"Re-queued {n} failed conversations." if n else "No failed conversations to retry.")
    return redirect("generation:job_detail", pk=pk)


@capability_required(Capability.VIEW_GENERATION)
def conversation_detail(request, pk):
    conv = get_object_or_404(Conversation.objects.select_related("job", "case", "persona"), pk=pk)
    return render(request, "generation/conversation_detail.html", {"conv": conv, "messages_": conv.messages.all()})


# --- case studies ---------------------------------------------------------------------------------


@capability_required(Capability.MANAGE_CASES)
def case_list(request):
    cases = CaseStudy.objects.all()
    helpers = ModelConfig.objects.filter(is_active=True)
    return render(request, "generation/case_list.html", {"cases": cases, "helpers": helpers,
                                                         "pending": services.cases_needing_facts().count()})


@capability_required(Capability.MANAGE_CASES)
def case_import(request):
    form = CaseImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        report = import_cases(upload.read(), upload.name)
        if report.ok:
            messages.success(request, f"Imported {len(report.created)} case studies.")
    return render(request, "generation/case_import.html", {"form": form, "report": report})


@capability_required(Capability.MANAGE_CASES)
def case_review(request, pk):
    case = get_object_or_404(CaseStudy, pk=pk)
    form = CaseReviewForm(request.POST or None, instance=case)
    if request.method == "POST" and form.is_valid():
        services.review_case(request.user, case, form.review_values())
        messages.success(request, f"{case.external_id} reviewed.")
        return redirect("generation:case_list")
    return render(request, "generation/case_review.html", {"case": case, "form": form})


@require_POST
@capability_required(Capability.MANAGE_CASES)
def case_extract(request):
    """Queue the LLM fact-extraction step for every case that still needs it."""
    from .tasks import extract_facts_for_case

    helper = get_object_or_404(ModelConfig, pk=request.POST.get("helper_model"), is_active=True)
    ids = list(services.cases_needing_facts().values_list("id", flat=True))
    for case_id in ids:
        extract_facts_for_case.delay(case_id, helper.pk)
    messages.success(request, f"Fact extraction queued for {len(ids)} case studies with {helper.name}.")
    return redirect("generation:case_list")


# --- model configurations -------------------------------------------------------------------------


@capability_required(Capability.MANAGE_MODELS)
def model_list(request):
    return render(request, "generation/model_list.html", {
        "configs": ModelConfig.objects.all(), "local": local_llm.status(),
    })


@capability_required(Capability.MANAGE_MODELS)
def model_edit(request, pk=None):
    instance = get_object_or_404(ModelConfig, pk=pk) if pk else None
    form = ModelConfigForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        config = services.save_model_config(request.user, instance, form.cleaned_data)
        messages.success(request, f"Saved {config.name}.")
        return redirect("generation:model_list")
    return render(request, "generation/model_form.html", {"form": form, "instance": instance})


@require_POST
@capability_required(Capability.MANAGE_MODELS)
def model_add_local(request):
    status = local_llm.status()
    if not status["available"]:
        messages.error(request, f"No local model answers at {status['api_base']}: run `make local-llm` first.")
    else:
        try:
            config, created = local_llm.ensure_config()
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{'Added' if created else 'Already configured'}: {config.name}.")
    return redirect("generation:model_list")
