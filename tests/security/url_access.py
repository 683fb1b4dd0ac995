"""Declared access expectations for EVERY URL pattern of the project.

tests/security/test_url_permissions.py enumerates the URL resolver and fails for a pattern that
has no entry here, so a new page cannot ship without someone deciding who may reach it.

Outcomes:
  LOGIN  302 to the login page (anonymous users on HTML pages)
  OK     2xx
  GONE   302/303 to somewhere other than the login page (e.g. after a successful POST)
  DENY   403 or 404 (the wrong role, or another rater's object: never data)
  UNAUTH 401 or 403 with a JSON error body (API without valid credentials)
  NOPE   405 (method not allowed, e.g. GET on a POST-only URL)
Roles: anon, rater, other_rater (a rater acting on the first rater's objects), researcher, admin;
API routes are also tried with each role's bearer token (token_<role>) and a revoked token.
"""
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

LOGIN, OK, GONE, DENY, UNAUTH, NOPE = "LOGIN", "OK", "GONE", "DENY", "UNAUTH", "NOPE"
ROLES = ("anon", "other_rater", "rater", "researcher", "admin")


@dataclass
class Access:
    expect: dict
    method: str = "GET"
    kwargs: Callable = lambda w: {}
    data: Callable = lambda w: {}
    # For API routes: outcomes with each role's token, e.g. {"rater": DENY, "researcher": OK}.
    token: dict = field(default_factory=dict)


def _probe(w, data_file: str):
    """A battery from probes/data/ and a (not yet run) run of it, made the first time a URL needs them."""
    if data_file not in w.objects:
        from pathlib import Path

        from probes.services import RunRequest, import_battery, launch_run

        data = (Path(__file__).resolve().parents[2] / "probes" / "data" / data_file).read_bytes()
        battery = import_battery(None, data, data_file).battery
        w.objects[data_file] = launch_run(None, RunRequest(battery=battery, model=w.objects["model_config"]),
                                          enqueue_tasks=False)
    return w.objects[data_file]


def _probe_run(w):
    return _probe(w, "stigma-v1.jsonl")


def _interjection_run(w):
    return _probe(w, "interjection-v1.jsonl")


def staff_only(method="GET", **kw) -> Access:
    """Admin-only HTML pages (a permitted POST answers with a redirect)."""
    admin = GONE if method == "POST" else OK
    return Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": admin},
                  method=method, **kw)


def everyone(method="GET", **kw) -> Access:
    return Access({"anon": OK, "other_rater": OK, "rater": OK, "researcher": OK, "admin": OK}, method=method, **kw)


def logged_in(method="GET", **kw) -> Access:
    return Access({"anon": LOGIN, "other_rater": OK, "rater": OK, "researcher": OK, "admin": OK},
                  method=method, **kw)


def api_readers(method="GET", **kw) -> Access:
    """API routes for researchers and admins; raters get nothing."""
    return Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        method=method,
        token={"rater": DENY, "researcher": OK, "admin": OK},
        **kw,
    )


URL_ACCESS: dict[str, Access] = {
    # --- project ---
    "home": Access({"anon": LOGIN, "other_rater": GONE, "rater": GONE, "researcher": OK, "admin": OK}),
    "healthz": everyone(),
    # --- django.contrib.auth ---
    "login": everyone(),
    "logout": Access({"anon": NOPE, "other_rater": NOPE, "rater": NOPE, "researcher": NOPE, "admin": NOPE}),
    "password_change": logged_in(),
    "password_change_done": logged_in(),
    "password_reset": everyone(),
    "password_reset_done": everyone(),
    "password_reset_confirm": everyone(kwargs=lambda w: {"uidb64": "MQ", "token": "set-password"}),
    "password_reset_complete": everyone(),
    # --- single sign-on (accounts/sso_urls.py): off by default, so a 404 for everyone (tests/accounts/test_sso.py
    # covers the enabled flow) ---
    "oidc_authentication_init": Access({"anon": DENY, "other_rater": DENY, "rater": DENY, "researcher": DENY,
                                        "admin": DENY}),
    "oidc_authentication_callback": Access({"anon": DENY, "other_rater": DENY, "rater": DENY, "researcher": DENY,
                                            "admin": DENY}),
    # --- accounts ---
    "accounts:user_list": staff_only(),
    "accounts:user_create": staff_only(),
    "accounts:user_set_active": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": GONE},
        method="POST", kwargs=lambda w: {"pk": w.other_rater.pk}, data=lambda w: {"active": "1"},
    ),
    "accounts:token_list": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "accounts:token_revoke": Access(
        # Only the owner (the researcher) can revoke it; an admin's own token list does not hold it.
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "admin": DENY, "researcher": GONE},
        method="POST", kwargs=lambda w: {"pk": w.objects["researcher_token"].pk},
    ),
    # --- generation ---
    "generation:overview": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "generation:job_launch": staff_only(),
    "generation:job_detail": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["job"].pk},
    ),
    "generation:job_progress": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["job"].pk},
    ),
    "generation:job_cancel": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": GONE},
        method="POST", kwargs=lambda w: {"pk": w.objects["job"].pk},
    ),
    "generation:job_retry": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": GONE},
        method="POST", kwargs=lambda w: {"pk": w.objects["job"].pk},
    ),
    "generation:conversation_detail": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["conversation"].pk},
    ),
    "generation:case_list": staff_only(),
    "generation:case_import": staff_only(),
    "generation:case_extract": staff_only(
        method="POST", data=lambda w: {"helper_model": w.objects["model_config"].pk}
    ),
    "generation:case_review": staff_only(kwargs=lambda w: {"pk": w.objects["case"].pk}),
    "generation:model_list": staff_only(),
    "generation:model_create": staff_only(),
    "generation:model_edit": staff_only(kwargs=lambda w: {"pk": w.objects["model_config"].pk}),
    "generation:model_add_local": staff_only(method="POST"),
    # --- rating ---
    "rating:home": Access({"anon": LOGIN, "other_rater": OK, "rater": OK, "researcher": DENY, "admin": DENY}),
    # Both world raters belong to the campaign; assignment URLs belong to w.rater only (other_rater: 404).
    "rating:campaign": Access(
        {"anon": LOGIN, "other_rater": OK, "rater": OK, "researcher": DENY, "admin": DENY},
        kwargs=lambda w: {"campaign_pk": w.objects["campaign"].pk},
    ),
    "rating:next": Access(
        {"anon": LOGIN, "other_rater": GONE, "rater": GONE, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"campaign_pk": w.objects["campaign"].pk},
    ),
    "rating:rate": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": OK, "researcher": DENY, "admin": DENY},
        kwargs=lambda w: {"pk": w.objects["assignment"].pk},
    ),
    "rating:save": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": OK, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk},
        data=lambda w: {"value__susceptibility": "3", "comment__susceptibility": "clear"},
    ),
    "rating:submit": Access(
        # An incomplete rating: redirected back to the page, which shows the errors.
        {"anon": LOGIN, "other_rater": DENY, "rater": GONE, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk},
    ),
    "rating:heartbeat": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": OK, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk}, data=lambda w: {"active_seconds": "5"},
    ),
    "rating:skip": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": GONE, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk}, data=lambda w: {"reason": "Conflict."},
    ),
    "rating:flag": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": GONE, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk},
        data=lambda w: {"category": "missed_risk", "reason": "Suicidal ideation not followed up."},
    ),
    # --- campaigns (admin; researchers may read progress) ---
    "campaigns:list": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "campaigns:detail": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk},
    ),
    "campaigns:create": staff_only(),
    "campaigns:preview": staff_only(),
    "campaigns:edit": staff_only(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "campaigns:gold": staff_only(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "campaigns:open": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "campaigns:close": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "campaigns:reclaim": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "campaigns:release": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["assignment"].pk}),
    "campaigns:safety_queue": staff_only(),
    "campaigns:flag_handle": staff_only(
        method="POST", kwargs=lambda w: {"pk": w.objects["safety_flag"].pk}, data=lambda w: {"action": "acknowledge"}
    ),
    "campaigns:rubrics": staff_only(),
    # --- results ---
    "results:index": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    # Results pages, CSV tables, SVG figures and the JSON snapshot: researchers and admins; raters get nothing.
    "results:campaign": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk},
    ),
    "results:status": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk},
    ),
    "results:snapshot_json": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk},
    ),
    "results:table_csv": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk, "name": "agreement"},
    ),
    "results:figure": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk, "name": "means-1-to-4"},
    ),
    "results:judge_table_csv": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk, "run_pk": w.objects["results_judge_run"].pk,
                          "name": "judge_vs_clinicians"},
    ),
    "results:judge_figure": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["campaign"].pk, "run_pk": w.objects["results_judge_run"].pk,
                          "name": "scatter-susceptibility"},
    ),
    # Recompute now: admins only (researchers read results but do not trigger work).
    "results:recompute": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    # --- judge validation mode (judging/validation_urls.py, results/validation_urls.py) ---
    "judge_validation:list": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "judge_validation:create": staff_only(),
    # The validation page and its saves belong to w.rater only; the campaign's other rater gets a 404.
    "judge_validation:validate": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": OK, "researcher": DENY, "admin": DENY},
        kwargs=lambda w: {"pk": w.objects["validation_assignment"].pk},
    ),
    "judge_validation:save": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": OK, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["validation_assignment"].pk},
        data=lambda w: {"verdict__flow": "agree", "comment__flow": "fair"},
    ),
    "judge_validation:submit": Access(
        # An incomplete review: redirected back to the page, which shows the errors.
        {"anon": LOGIN, "other_rater": DENY, "rater": GONE, "researcher": DENY, "admin": DENY},
        method="POST", kwargs=lambda w: {"pk": w.objects["validation_assignment"].pk},
    ),
    "validation_results:campaign": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["validation_campaign"].pk},
    ),
    "validation_results:agreement_csv": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": w.objects["validation_campaign"].pk},
    ),
    # --- safety probes: researchers read, admins load batteries and launch, cancel and retry runs ---
    "probes:index": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "probes:battery_import": staff_only(),
    "probes:battery_detail": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).battery_id},
    ),
    "probes:run_launch": staff_only(),
    "probes:run_detail": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).pk},
    ),
    "probes:run_progress": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).pk},
    ),
    "probes:run_items_csv": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).pk},
    ),
    "probes:run_cancel": staff_only(method="POST", kwargs=lambda w: {"pk": _probe_run(w).pk}),
    "probes:run_retry": staff_only(method="POST", kwargs=lambda w: {"pk": _probe_run(w).pk}),
    "probes:run_judge": staff_only(method="POST", kwargs=lambda w: {"pk": _interjection_run(w).pk}),
    "probes:run_campaign": staff_only(kwargs=lambda w: {"pk": _interjection_run(w).pk}),
    "results:probe_report": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).battery_id},
    ),
    "results:probe_table_csv": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).battery_id, "name": "by_condition"},
    ),
    "results:probe_figure": Access(
        {"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK},
        kwargs=lambda w: {"pk": _probe_run(w).battery_id},
    ),
    # --- judging (admins launch and watch judge runs; researchers read judge scores through the API) ---
    "judging:campaign_panel": staff_only(kwargs=lambda w: {"campaign_pk": w.objects["campaign"].pk}),
    "judging:campaign_runs": staff_only(kwargs=lambda w: {"campaign_pk": w.objects["campaign"].pk}),
    "judging:launch": staff_only(
        method="POST", kwargs=lambda w: {"campaign_pk": w.objects["campaign"].pk},
        data=lambda w: {"judge_model": w.objects["judge_run"].judge_model_id, "samples": "1", "seed": "3",
                        "max_concurrent_calls": "2"},
    ),
    "judging:run_list": staff_only(),
    "judging:run_detail": staff_only(kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    "judging:run_progress": staff_only(kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    "judging:run_cancel": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    "judging:run_retry": staff_only(method="POST", kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    # --- API ---
    "api:schema": api_readers(),
    "api:docs": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "api:me": Access(
        {"anon": UNAUTH, "other_rater": OK, "rater": OK, "researcher": OK, "admin": OK},
        token={"rater": OK, "researcher": OK, "admin": OK},
    ),
    # --- API v1 resources (api/urls.py); every method of each is tried in tests/api/test_api_permissions.py ---
    "api:conversation_list": api_readers(),
    "api:conversation_detail": api_readers(kwargs=lambda w: {"pk": w.objects["conversation"].pk}),
    "api:conversation_scores": api_readers(kwargs=lambda w: {"pk": w.objects["conversation"].pk}),
    "api:conversation_import": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", data=lambda w: _import_upload(), token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    "api:rubric_list": api_readers(),
    "api:campaign_list": api_readers(),
    "api:campaign_detail": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:campaign_ratings": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:campaign_scores": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:campaign_agreement": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:campaign_judge_agreement": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:campaign_judge_run_agreement": api_readers(
        kwargs=lambda w: {"pk": w.objects["campaign"].pk, "run_pk": w.objects["results_judge_run"].pk}
    ),
    "api:campaign_export": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:judge_validation_create": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", token={"rater": DENY, "researcher": DENY, "admin": OK},
        data=lambda w: {"judge_run": w.objects["validation_judge_run"].pk, "name": "Second look again",
                        "raters": [w.rater.pk, w.other_rater.pk], "overlap_k": 2},
    ),
    "api:campaign_judge_validation": api_readers(kwargs=lambda w: {"pk": w.objects["validation_campaign"].pk}),
    "api:campaign_datasheet": api_readers(kwargs=lambda w: {"pk": w.objects["campaign"].pk}),
    "api:job_list": api_readers(),
    "api:job_detail": api_readers(kwargs=lambda w: {"pk": w.objects["job"].pk}),
    "api:job_cancel": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": w.objects["job"].pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    "api:job_retry": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": w.objects["job"].pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    "api:probe_report": api_readers(kwargs=lambda w: {"pk": _probe_run(w).battery_id}),
    # Probe runs name the model under test: researchers and admins read runs and their item-level dataset;
    # only admins launch (POST on the list: tests/api/test_api_permissions.py), cancel and retry.
    "api:probe_run_list": api_readers(),
    "api:probe_run_detail": api_readers(kwargs=lambda w: {"pk": _probe_run(w).pk}),
    "api:probe_run_items": api_readers(kwargs=lambda w: {"pk": _probe_run(w).pk}),
    "api:probe_run_cancel": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": _probe_run(w).pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    "api:probe_run_retry": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": _probe_run(w).pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    # Judge runs: researchers and admins read runs and judge scores; only admins launch, cancel, retry.
    "api:judge_run_list": api_readers(),
    "api:judge_run_detail": api_readers(kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    "api:judge_run_scores": api_readers(kwargs=lambda w: {"pk": w.objects["judge_run"].pk}),
    "api:judge_run_cancel": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": w.objects["judge_run"].pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    "api:judge_run_retry": Access(
        {"anon": UNAUTH, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": OK},
        method="POST", kwargs=lambda w: {"pk": w.objects["judge_run"].pk},
        token={"rater": DENY, "researcher": DENY, "admin": OK},
    ),
    # Raters see their own assignments and nothing else of the API.
    "api:my_assignments": Access(
        {"anon": UNAUTH, "other_rater": OK, "rater": OK, "researcher": DENY, "admin": DENY},
        token={"rater": OK, "researcher": DENY, "admin": DENY},
    ),
    # Unknown routes under /api/v1/: a JSON 404 for everyone (a bad token is still a 401).
    "api:not_found": Access(
        {"anon": DENY, "other_rater": DENY, "rater": DENY, "researcher": DENY, "admin": DENY},
        kwargs=lambda w: {"rest": "no/such/route"}, token={"rater": DENY, "researcher": DENY, "admin": DENY},
    ),
    # --- exports and imports pages (study_data/urls.py) ---
    "exports:index": Access({"anon": LOGIN, "other_rater": DENY, "rater": DENY, "researcher": OK, "admin": OK}),
    "exports:import": staff_only(),
}

_import_seq = itertools.count(1)


def _import_upload() -> dict:
    """A one-line JSONL file with a fresh external id (each permitted POST really imports it)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    line = json.dumps({"external_id": f"url-access-{next(_import_seq)}", "messages": [
        {"role": "user", "content": "I keep waking up at 4am."},
        {"role": "assistant", "content": "That sounds hard. How long has it been going on?"},
    ]})
    return {"file": SimpleUploadedFile("conversations.jsonl", line.encode(), content_type="application/x-ndjson")}
