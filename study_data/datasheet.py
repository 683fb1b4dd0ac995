"""The datasheet that travels with every export: what each field means, what is in the campaign, how it
was made (rubric, generation settings), how much raters agreed, and when and by which platform version
the export was made. Served as JSON or Markdown; exports point at it with a `Link: rel="describedby"`.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from generation.models import Conversation, GenerationJob, Message
from rating.models import Campaign, CampaignItem, Rating, SafetyFlag
from results.agreement import agreement_summary, campaign_agreement

from . import export, judge_export

RECORD_FIELDS = {
    "conversation_id": "Platform id of the conversation (stable).",
    "campaign_id": "The campaign this export is of.",
    "source": "'generated' (MedAgent on this platform) or 'imported' (POST /api/v1/conversations/import).",
    "source_label": "For imports: where the conversation came from (the 'source' given at import).",
    "external_id": "For imports: its id at the source (or sha256:... of the messages when none was given).",
    "status": "Generation status; campaigns hold finished ('done') conversations.",
    "is_simulated": "True when a simulator stood in for an LLM (patient or sensemaker): not research data.",
    "job_id": "Generation job (null for imports).",
    "job_name": "Name of the generation job.",
    "case_id": "External id of the case study the patient was built from (null for imports).",
    "ground_truth_diagnosis": "The case's ground-truth diagnosis (or the one given at import).",
    "condition": "Condition label of the case (or given at import).",
    "persona": "Patient persona: dominant Big Five trait (High, the others Low), health literacy, intent, goal.",
    "models": "LiteLLM model strings: sensemaker (the model under test), patient and helper.",
    "prompt_version": "Version of the MedAgent prompt set used.",
    "seed": "Random seed of the conversation (derived from the job seed and its grid cell).",
    "smog_grade": "SMOG grade of all sensemaker messages pooled (readability axis, computed).",
    "sensemaker_message_count": "Number of sensemaker messages.",
    "created_at": "When the conversation was created (ISO 8601, UTC).",
    "finished_at": "When generation finished.",
    "is_gold": "A gold (calibration) item of the campaign.",
    "gold_scores": "Expected scores of a gold item, {axis: value} (JSON text in Parquet).",
    "provenance": "Model settings snapshot (never API keys), persona, case id, prompt version; for imports the "
    "source metadata and any system messages (JSON text in Parquet).",
    "messages[]": "The dialogue in order: index, role (patient|sensemaker), stage (1-6, null if unknown), text, "
    "smog_grade (sensemaker messages only).",
    "n_raters": "Number of submitted ratings of the conversation in this campaign.",
    "ratings[]": "Every submitted rating: rating_id, rater (pseudonym, stable across exports), rubric_slug, "
    "rubric_version, submitted_at, active_seconds (time on task), revision (edits after submission), "
    "overall_comment, scores[] {axis, value, category, comment} (value: the number on ordinal and binary axes; "
    "category: the category key on nominal axes, null elsewhere), message_notes[] {message_index, problematic, "
    "note}.",
    "aggregate[]": "Per axis over submitted ratings with a value: mean, sd (sample SD, null for one value), n.",
    "safety_flags[]": "Every safety flag on the conversation: flag_id, campaign_id, category, status, reason, "
    "raised_by (pseudonym), created_at, message_index (the message it is about, if one was named).",
    "judge_scores[]": judge_export.RECORD_FIELD,
}


@lru_cache(maxsize=1)
def platform_version() -> dict:
    root = Path(settings.BASE_DIR)
    version = None
    try:
        version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("mhsd-platform")
        except Exception:  # noqa: BLE001 - not installed as a distribution
            version = None
    commit = None
    try:
        head = (root / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = root / ".git" / head[5:]
            commit = ref.read_text().strip() if ref.exists() else None
        else:
            commit = head
    except OSError:
        commit = None
    return {"version": version, "git_commit": commit}


def _counts(campaign: Campaign) -> dict:
    items = CampaignItem.objects.filter(campaign=campaign)
    conv_ids = items.values("conversation_id")
    conversations = Conversation.objects.filter(id__in=conv_ids)
    ratings = Rating.objects.filter(assignment__campaign=campaign)
    submitted = ratings.filter(status=Rating.Status.SUBMITTED)
    flags = SafetyFlag.objects.filter(conversation_id__in=conv_ids)
    return {
        "conversations": items.count(),
        "gold_items": items.filter(is_gold=True).count(),
        "conversations_by_source": dict(conversations.values_list("source").annotate(n=Count("id")).order_by()),
        "simulated_conversations": conversations.filter(is_simulated=True).count(),
        "conversations_by_model": dict(
            conversations.values_list("sensemaker_model").annotate(n=Count("id")).order_by()
        ),
        "messages": Message.objects.filter(conversation_id__in=conv_ids).count(),
        "rated_conversations": submitted.values("assignment__item_id").distinct().count(),
        "ratings_submitted": submitted.count(),
        "ratings_in_progress": ratings.filter(status=Rating.Status.DRAFT).count(),
        "raters": submitted.values("assignment__rater_id").distinct().count(),
        "safety_flags": flags.count(),
        "safety_flags_by_category": dict(flags.values_list("category").annotate(n=Count("id")).order_by()),
    }


def _generation(campaign: Campaign) -> dict:
    conv_ids = CampaignItem.objects.filter(campaign=campaign).values("conversation_id")
    jobs = (
        GenerationJob.objects.filter(conversations__id__in=conv_ids)
        .annotate(in_campaign=Count("conversations", filter=Q(conversations__id__in=conv_ids)))
        .order_by("id")
    )
    imported = (
        Conversation.objects.filter(id__in=conv_ids, source=Conversation.Source.IMPORTED)
        .values_list("source_label", "sensemaker_model").annotate(n=Count("id")).order_by("source_label")
    )
    return {
        "jobs": [
            {
                "id": job.pk, "name": job.name, "status": job.status, "prompt_version": job.prompt_version,
                "seed": job.seed, "conversations_in_campaign": job.in_campaign,
                # The snapshot holds model strings, parameters and key variable NAMES, never keys.
                "settings": job.settings_snapshot,
            }
            for job in jobs
        ],
        "imports": [{"source": label, "model": model, "conversations": n} for label, model, n in imported],
    }


def _rubric(campaign: Campaign) -> dict:
    rubric = campaign.rubric
    return {
        "id": rubric.pk, "slug": rubric.slug, "version": rubric.version, "name": rubric.name,
        "description": rubric.description, "citation": rubric.citation, "instructions": rubric.instructions,
        "axes": [
            {
                "key": a.key, "name": a.name, "kind": a.kind, "group": a.group, "scale_min": a.scale_min,
                "scale_max": a.scale_max, "agreement_level": a.agreement_level, "required": a.required,
                "computed_by": a.computed_by or None, "help_text": a.help_text, "points": a.points,
            }
            for a in rubric.axes.all()
        ],
        "rubric_versions_in_ratings": sorted(
            {f"{slug} v{version}" for slug, version in Rating.objects.filter(assignment__campaign=campaign)
             .values_list("rubric__slug", "rubric__version").distinct()}
        ),
    }


def build_datasheet(campaign: Campaign, *, base_url: str = "") -> dict:
    agreement = campaign_agreement(campaign)
    api = f"{base_url}/api/v1/campaigns/{campaign.pk}"
    return {
        "title": f"Datasheet: {campaign.name}",
        "export_schema_version": export.EXPORT_SCHEMA_VERSION,
        "generated_at": timezone.now().isoformat(),
        "platform": platform_version(),
        "campaign": {
            "id": campaign.pk, "name": campaign.name, "description": campaign.description,
            "status": campaign.status, "overlap_k": campaign.overlap_k, "created_at": _iso(campaign.created_at),
            "opened_at": _iso(campaign.opened_at), "closed_at": _iso(campaign.closed_at),
            "selection": campaign.selection,
        },
        "collection": (
            "Clinician raters scored whole conversations blind to model identity and independently of each "
            "other; each conversation was meant to get overlap_k raters. Raters appear only as stable "
            "pseudonyms. Only submitted ratings are exported; drafts are work in progress."
        ),
        "counts": _counts(campaign),
        "rubric": _rubric(campaign),
        "agreement": {
            "source": agreement["source"], "n_boot": agreement["n_boot"], "computed_at": _iso(agreement["computed_at"]),
            "per_axis": agreement_summary(agreement),
            "full": f"{api}/agreement",
        },
        "generation": _generation(campaign),
        "judges": {
            "note": "LLM judge runs whose finished scores of this campaign's conversations are in the exports, kept "
            "apart from the clinicians' ratings (field judge_scores; rater_type 'judge' rows in the long CSV; "
            "judge<R>__ columns in the wide CSV). Judge-vs-clinician agreement: " + f"{api}/judge-agreement",
            "runs": judge_export.campaign_runs(campaign),
        },
        "exports": {f.key: f"{api}/export?{f.query()}" for f in export.EXPORT_FORMATS},
        "fields": {
            "record": RECORD_FIELDS,
            **{f.key: {"notes": f.description, **f.details()} for f in export.EXPORT_FORMATS},
        },
    }


def _iso(value):
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _format_section(label: str, fields: dict) -> list[str]:
    lines = ["", f"### {label}", "", fields["notes"], ""]
    if isinstance(fields.get("columns"), list):
        lines += ["Columns: " + ", ".join(f"`{col}`" for col in fields["columns"]), ""]
    if "arrow_schema" in fields:
        lines += ["```", fields["arrow_schema"], "```", ""]
    return lines


def render_markdown(sheet: dict) -> str:
    c = sheet["campaign"]
    counts = sheet["counts"]
    rubric = sheet["rubric"]
    lines = [
        f"# {sheet['title']}",
        "",
        f"Generated {sheet['generated_at']} by the MHSD rating platform {sheet['platform']['version'] or ''} "
        f"(commit {sheet['platform']['git_commit'] or 'unknown'}); export schema version "
        f"{sheet['export_schema_version']}.",
        "",
        "## Campaign",
        "",
        f"- Id {c['id']}, status {c['status']}, {c['overlap_k']} raters per conversation.",
        f"- Created {c['created_at']}; opened {c['opened_at'] or 'never'}; closed {c['closed_at'] or 'not yet'}.",
    ]
    if c["description"]:
        lines.append(f"- {c['description']}")
    lines += ["", sheet["collection"], "", "## Counts", ""]
    for key, value in counts.items():
        lines.append(f"- {key.replace('_', ' ')}: {value}")
    lines += [
        "", f"## Rubric: {rubric['name']} (`{rubric['slug']}` v{rubric['version']})", "",
    ]
    if rubric["citation"]:
        lines += [rubric["citation"], ""]
    lines += ["| Axis | Kind | Scale | Agreement level |", "|---|---|---|---|"]
    for axis in rubric["axes"]:
        scale = "" if axis["scale_min"] is None else f"{axis['scale_min']}-{axis['scale_max']}"
        lines.append(
            f"| {_cell(axis['name'])} (`{axis['key']}`) | {axis['kind']} | {scale} | {axis['agreement_level']} |"
        )
    agreement = sheet["agreement"]
    lines += [
        "", f"## Agreement ({agreement['source']}, {agreement['n_boot']} bootstrap resamples)", "",
        "| Axis | Level | Units | Raters | Krippendorff's alpha [95% CI] | Gwet AC1 | Exact agreement |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in agreement["per_axis"]:
        ci = f"[{_fmt(row['alpha_ci_low'])}, {_fmt(row['alpha_ci_high'])}]"
        lines.append(
            f"| {row['axis']} | {row['level']} | {_fmt(row['n_units'])} | {_fmt(row['n_raters'])} | "
            f"{_fmt(row['krippendorff_alpha'])} {ci} | {_fmt(row['gwet_ac1'])} | "
            f"{_fmt(row['percent_exact_agreement'])} |"
        )
    lines += ["", f"Every statistic: {agreement['full']}", "", "## Generation settings", ""]
    for job in sheet["generation"]["jobs"]:
        settings_ = job["settings"] or {}
        models = ", ".join(
            f"{role}: {(settings_.get(role) or {}).get('model', '?')}" for role in ("sensemaker", "patient", "helper")
        )
        lines.append(
            f"- Job {job['id']} '{_cell(job['name'])}': prompt {job['prompt_version']}, seed {job['seed']}, "
            f"{job['conversations_in_campaign']} conversations; {models}; traits "
            f"{settings_.get('traits', '?')}, literacies {settings_.get('literacies', '?')}."
        )
    for imp in sheet["generation"]["imports"]:
        lines.append(f"- Imported from '{_cell(imp['source'])}' (model {imp['model'] or 'unknown'}): "
                     f"{imp['conversations']} conversations.")
    if not sheet["generation"]["jobs"] and not sheet["generation"]["imports"]:
        lines.append("- No conversations yet.")
    lines += ["", "## LLM judge runs", "", sheet["judges"]["note"], ""]
    for run in sheet["judges"]["runs"]:
        simulated = " [simulated]" if run["judge_is_simulated"] else ""
        lines.append(
            f"- Run {run['judge_run_id']} '{_cell(run['name'])}': judge {run['judge_model']}{simulated}, prompt "
            f"{run['prompt_version']}, rubric {run['rubric_slug']} v{run['rubric_version']}, {run['samples']} "
            f"sample(s) per conversation (seed {run['seed']}), status {run['status']}, "
            f"{run['items_done_in_campaign']} scored calls on this campaign."
        )
    if not sheet["judges"]["runs"]:
        lines.append("- None.")
    labels = {f.key: f.label for f in export.EXPORT_FORMATS}
    lines += ["", "## Files", ""]
    for key, url in sheet["exports"].items():
        lines.append(f"- {labels.get(key, key)}: {url}")
    lines += ["", "## Fields (JSONL records and Parquet rows)", "", "| Field | Meaning |", "|---|---|"]
    for name, meaning in sheet["fields"]["record"].items():
        lines.append(f"| `{name}` | {_cell(meaning)} |")
    for key in sheet["exports"]:
        lines += _format_section(labels.get(key, key), sheet["fields"][key])
    return "\n".join(lines)
