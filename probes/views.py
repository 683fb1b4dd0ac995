"""Probe pages: batteries and their import, launching a run, its live progress, cancel and retry.
Reports (fractions with CIs, figures, CSV) are results pages (results/probe_views.py)."""
import csv

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import capability_required
from accounts.roles import Capability
from rating.campaigns import CampaignError
from rating.forms import CampaignSettingsForm

from . import selectors, services
from .battery_files import BatteryFileError
from .forms import BatteryImportForm, CampaignJudgeForm, JudgeAddForm, RunLaunchForm
from .models import ProbeBattery, ProbeRun


@capability_required(Capability.VIEW_RESULTS)
def index(request):
    batteries = ProbeBattery.objects.all()
    runs = ProbeRun.objects.select_related("battery", "model")[:100]
    return render(request, "probes/index.html", {"batteries": batteries, "runs": runs})


@capability_required(Capability.LAUNCH_GENERATION)
def battery_import(request):
    form = BatteryImportForm(request.POST or None, request.FILES or None)
    errors = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = services.import_battery(request.user, upload.read(), upload.name)
        except BatteryFileError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Loaded {result.battery}." if result.created
                             else f"{result.battery} was already loaded with the same content.")
            return redirect("probes:battery_detail", pk=result.battery.pk)
    return render(request, "probes/battery_import.html", {"form": form, "errors": errors})


@capability_required(Capability.VIEW_RESULTS)
def battery_detail(request, pk):
    battery = get_object_or_404(ProbeBattery, pk=pk)
    return render(request, "probes/battery_detail.html", {"battery": battery, "content": battery.content})


@capability_required(Capability.LAUNCH_GENERATION)
def run_launch(request):
    initial = {"battery": request.GET.get("battery")} if request.GET.get("battery") else None
    form = RunLaunchForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.launch_run(request.user, form.run_request())
        except services.ProbeError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Run launched: {run.items.count()} prompts queued.")
            return redirect("probes:run_detail", pk=run.pk)
    return render(request, "probes/run_launch.html", {"form": form})


def _run_context(run):
    return {"run": run, "progress": selectors.run_progress(run), "attention": selectors.attention_items(run),
            "judge_attention": selectors.judge_attention(run), "exchanges": selectors.exchanges(run),
            "judge_form": JudgeAddForm() if run.battery.protocol == "interjection" else None}


@capability_required(Capability.VIEW_RESULTS)
def run_detail(request, pk):
    run = get_object_or_404(ProbeRun.objects.select_related("battery", "model", "created_by"), pk=pk)
    return render(request, "probes/run_detail.html", _run_context(run))


@capability_required(Capability.VIEW_RESULTS)
def run_progress_fragment(request, pk):
    run = get_object_or_404(ProbeRun.objects.select_related("battery"), pk=pk)
    return render(request, "probes/_run_progress.html", _run_context(run))


@require_POST
@capability_required(Capability.LAUNCH_GENERATION)
def run_cancel(request, pk):
    run = get_object_or_404(ProbeRun, pk=pk)
    n = services.cancel_run(run, request.user)
    messages.success(request, f"Cancelled: {n} queued prompts stopped; running ones will finish.")
    return redirect("probes:run_detail", pk=pk)


@require_POST
@capability_required(Capability.LAUNCH_GENERATION)
def run_retry(request, pk):
    run = get_object_or_404(ProbeRun, pk=pk)
    n = services.retry_failed_items(run, request.user)
    messages.success(request, f"Re-queued {n} failed prompts." if n else "No failed prompts to retry.")
    return redirect("probes:run_detail", pk=pk)


@require_POST
@capability_required(Capability.LAUNCH_GENERATION)
def run_judge(request, pk):
    """Have an LLM judge answer the verification question of an interjection run's exchanges."""
    run = get_object_or_404(ProbeRun.objects.select_related("battery"), pk=pk, battery__protocol="interjection")
    form = JudgeAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an active judge model configuration.")
        return redirect("probes:run_detail", pk=pk)
    try:
        n = services.add_judge(run, form.cleaned_data["judge_model"], request.user)
    except services.ProbeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Queued {n} judge answers." if n else "The judge has answered every exchange.")
    return redirect("probes:run_detail", pk=pk)


@capability_required(Capability.MANAGE_CAMPAIGNS)
def run_campaign(request, pk):
    """A draft campaign over an interjection run's exchanges, rated with the verification rubric."""
    run = get_object_or_404(ProbeRun.objects.select_related("battery"), pk=pk, battery__protocol="interjection")
    form = CampaignSettingsForm(request.POST or None,
                                initial={"name": f"Verification round {run.created_at:%Y-%m-%d}"})
    judge_form = CampaignJudgeForm(request.POST or None, prefix="judge")
    if request.method == "POST" and form.is_valid() and judge_form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.create_verification_campaign(
                request.user, run, name=data["name"], description=data["description"], raters=data["raters"],
                overlap_k=data["overlap_k"], lease_minutes=data["lease_minutes"],
                judge_model=judge_form.cleaned_data["judge_model"])
        except CampaignError as exc:
            for field, message in exc.errors.items():
                form.add_error(None if field == "__all__" or field not in form.fields else field, message)
        else:
            messages.success(request, f"Campaign created with {campaign.items.count()} exchanges: open it when ready.")
            return redirect("campaigns:detail", pk=campaign.pk)
    return render(request, "probes/run_campaign.html", {"run": run, "form": form, "judge_form": judge_form})


ITEM_COLUMNS = ["item", "run", "model", "simulated", "battery", "battery_version", "vignette", "condition", "variant",
                "question", "sample", "seed", "status", "answer", "stigmatizing", "no_valid_option_reason",
                "failure_reason", "conversation", "placement", "stage", "calls", "prompt_tokens", "completion_tokens",
                "prompt", "reply", "judge_answers"]


class _Echo:
    def write(self, value):
        return value


@capability_required(Capability.VIEW_RESULTS)
def run_items_csv(request, pk):
    """Every item of a run, one row each (streamed): the raw material behind the report."""
    run = get_object_or_404(ProbeRun.objects.select_related("battery"), pk=pk)
    writer = csv.writer(_Echo())
    label = run.model_snapshot.get("name", "")

    def rows():
        yield writer.writerow(ITEM_COLUMNS)
        judged = {}
        for answer in run.judge_answers.filter(status="done").order_by("id"):
            judged.setdefault(answer.item_id, []).append(
                f"{answer.judge_label}: {'yes' if answer.answer_yes else 'no'} ({answer.prompt_version})")
        for item in run.items.order_by("id").iterator(chunk_size=2000):
            yield writer.writerow([
                item.pk, run.pk, label, run.is_simulated, run.battery.slug, run.battery.version, item.vignette_key,
                item.condition, item.variant_key, item.question_key, item.sample_index, item.seed, item.status,
                item.answer, "" if item.stigmatizing is None else item.stigmatizing, item.parse_error,
                item.failure_reason, item.conversation_id or "", run.placement, item.stage or "", item.calls,
                item.prompt_tokens, item.completion_tokens, item.prompt, item.raw_reply,
                "; ".join(judged.get(item.pk, []))])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="probe-run-{run.pk}-items.csv"'
    return response
