"""Case-study import and review, fact extraction, model configurations, the job pages."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from generation import services
from generation.case_import import import_cases
from generation.models import CaseStudy, GenerationJob, ModelConfig
from tests.factories import make_case, make_model, make_user

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "id,text,ground_truth_diagnosis,condition\n"
    "c-1,A 40-year-old with two weeks of racing thoughts and no sleep.,Bipolar I disorder,bipolar\n"
    '"c-2","A student with intrusive thoughts and checking rituals, daily.",Obsessive-compulsive disorder,ocd\n'
)


def test_csv_import_creates_cases():
    report = import_cases(GOOD_CSV.encode(), "cases.csv")
    assert report.ok and report.created == ["c-1", "c-2"]
    case = CaseStudy.objects.get(external_id="c-2")
    assert case.facts_status == CaseStudy.FactsStatus.PENDING and "checking rituals" in case.text


def test_a_bad_row_names_line_and_field_and_commits_nothing():
    bad = GOOD_CSV + "c-3,,Panic disorder,panic\nc-4,Some text,,x\nc-1,dup in file,GAD,\n"
    report = import_cases(bad.encode(), "cases.csv")
    assert not report.ok
    assert "line 4, field 'text': required" in report.errors
    assert "line 5, field 'ground_truth_diagnosis': required" in report.errors
    assert any(e.startswith("line 6, field 'id'") and "line 2" in e for e in report.errors)
    assert CaseStudy.objects.count() == 0


def test_jsonl_import_validates_types_and_enumerations():
    lines = [
        {"id": "j-1", "text": "t", "ground_truth_diagnosis": "GAD", "intent": "lifestyle_literacy", "goal": "comfort",
         "facts": ["I worry every day"]},
        {"id": "j-2", "text": "t", "ground_truth_diagnosis": "GAD", "intent": "cure everything"},
        "not an object",
    ]
    data = "\n".join(json.dumps(x) for x in lines) + "\n{broken\n"
    report = import_cases(data.encode(), "cases.jsonl")
    assert "line 2, field 'intent': must be one of interpreting_information, lifestyle_literacy, personalising_care" \
        in report.errors
    assert "line 3: expected a JSON object" in report.errors
    assert any(e.startswith("line 4: not valid JSON") for e in report.errors)
    assert CaseStudy.objects.count() == 0


def test_a_csv_row_with_more_cells_than_the_header_is_an_error_naming_its_line(client):
    extra = GOOD_CSV + "c-3,Some text,GAD,anxiety,surplus,cells\n"
    report = import_cases(extra.encode(), "cases.csv")
    assert report.errors == ["line 4: more cells than header columns (6 cells, 4 columns)"]
    assert CaseStudy.objects.count() == 0
    # The import page shows it as an error in the page (it used to raise TypeError: a 500).
    client.force_login(make_user(Role.ADMIN))
    upload = SimpleUploadedFile("cases.csv", extra.encode(), content_type="text/csv")
    page = client.post(reverse("generation:case_import"), {"file": upload})
    assert page.status_code == 200 and b"line 4: more cells than header columns" in page.content


def test_a_multi_line_csv_record_is_reported_by_its_first_line():
    data = (
        "id,text,ground_truth_diagnosis,facts\n"
        '"m-1","A case whose text\nruns over\nthree lines.",GAD,"I worry\nI sleep badly"\n'
        "\n"
        '"m-2","Another long\ncase text.",,"I feel low"\n'
        '"m-3",text,PTSD,"one\ntwo",extra\n'
    )
    report = import_cases(data.encode(), "cases.csv")
    # m-1 spans lines 2-5, line 6 is blank, m-2 spans lines 7-8 and m-3 starts on line 9.
    assert report.errors == ["line 7, field 'ground_truth_diagnosis': required",
                             "line 9: more cells than header columns (5 cells, 4 columns)"]
    fixed = data.replace('case text.",,', 'case text.",MDD,').replace('"one\ntwo",extra', '"one\ntwo"')
    report = import_cases(fixed.encode(), "cases.csv")
    assert report.ok and report.created == ["m-1", "m-2", "m-3"]
    assert CaseStudy.objects.get(external_id="m-1").facts == ["I worry", "I sleep badly"]


def test_jsonl_wrong_types_and_over_long_values_are_errors_never_stringified_or_cut():
    good = {"id": "j-1", "text": "A case.", "ground_truth_diagnosis": "GAD"}
    lines = [
        {**good, "id": [1]},
        {**good, "id": "j-2", "text": {"summary": "dict text"}},
        {**good, "id": "j-3", "ground_truth_diagnosis": 42},
        {**good, "id": "j-4", "condition": "x" * 121},
        {**good, "id": "j-5", "facts": ["I worry", {"fact": "nested"}]},
        {**good, "id": "j-6", "facts": "[1, 2]"},
        {**good, "id": "j-7", "intent": True},
        {**good, "id": 8},  # a whole-number id is fine
    ]
    data = "\n".join(json.dumps(x) for x in lines) + "\n"
    report = import_cases(data.encode(), "cases.jsonl")
    assert report.errors == [
        "line 1, field 'id': expected a string or a whole number, got a list",
        "line 2, field 'text': expected a string, got an object",
        "line 3, field 'ground_truth_diagnosis': expected a string, got a number",
        "line 4, field 'condition': at most 120 characters",
        "line 5, field 'facts': expected a list of strings",
        "line 6, field 'facts': expected a list of strings",
        "line 7, field 'intent': expected a string, got true/false",
    ]
    assert CaseStudy.objects.count() == 0
    report = import_cases((json.dumps(lines[-1]) + "\n").encode(), "cases.jsonl")
    assert report.ok and CaseStudy.objects.get().external_id == "8"


def test_reimporting_reports_duplicates_and_changes_nothing():
    import_cases(GOOD_CSV.encode(), "cases.csv")
    changed = GOOD_CSV.replace("Bipolar I disorder", "Something else")
    report = import_cases(changed.encode(), "cases.csv")
    assert report.ok and report.created == [] and report.duplicates == ["c-1", "c-2"]
    assert CaseStudy.objects.get(external_id="c-1").ground_truth_diagnosis == "Bipolar I disorder"


def test_import_page_shows_errors_in_the_page(client):
    client.force_login(make_user(Role.ADMIN))
    upload = SimpleUploadedFile("cases.csv", b"id,text\nx,y\n", content_type="text/csv")
    page = client.post(reverse("generation:case_import"), {"file": upload})
    assert page.status_code == 200
    assert b"Nothing was imported" in page.content and b"ground_truth_diagnosis" in page.content


def test_fact_extraction_through_litellm_then_admin_review(client):
    case = make_case(facts=[], intent="", goal="", facts_status=CaseStudy.FactsStatus.PENDING)
    helper = make_model("simulator/helper")
    services.extract_case_facts(case, helper)
    case.refresh_from_db()
    assert case.facts_status == CaseStudy.FactsStatus.EXTRACTED
    assert case.facts and case.intent and case.goal
    client.force_login(make_user(Role.ADMIN))
    url = reverse("generation:case_review", args=[case.pk])
    empty = client.post(url, {"ground_truth_diagnosis": "MDD", "intent": case.intent, "goal": case.goal,
                              "facts_text": "  \n", "vital_facts_text": ""})
    assert empty.status_code == 200 and b"at least one fact" in empty.content
    client.post(url, {"ground_truth_diagnosis": "Major depressive disorder", "condition": "depression",
                      "intent": "lifestyle_literacy", "goal": "comfort",
                      "facts_text": "I feel low\nI sleep badly", "vital_facts_text": "My pulse was 70"})
    case.refresh_from_db()
    assert case.facts == ["I feel low", "I sleep badly"] and case.vital_facts == ["My pulse was 70"]
    assert case.facts_status == CaseStudy.FactsStatus.REVIEWED


def test_a_late_extraction_never_overwrites_facts_an_admin_reviewed(monkeypatch):
    """Extraction runs in a worker; if an admin reviews the case meanwhile, the review wins."""
    case = make_case(facts=[], intent="", goal="", facts_status=CaseStudy.FactsStatus.PENDING)
    import generation.medagent as medagent

    real_extract = medagent.extract_case

    def extract_while_admin_reviews(*args, **kwargs):
        result = real_extract(*args, **kwargs)
        CaseStudy.objects.filter(pk=case.pk).update(
            facts=["Reviewed by a clinician"], intent="lifestyle_literacy", goal="comfort",
            facts_status=CaseStudy.FactsStatus.REVIEWED,
        )
        return result

    monkeypatch.setattr(medagent, "extract_case", extract_while_admin_reviews)
    returned = services.extract_case_facts(case, make_model("simulator/helper"))
    case.refresh_from_db()
    assert case.facts == ["Reviewed by a clinician"] and case.facts_status == CaseStudy.FactsStatus.REVIEWED
    assert returned.facts == ["Reviewed by a clinician"]


def test_model_configuration_stores_a_variable_name_never_a_key(client):
    client.force_login(make_user(Role.ADMIN))
    url = reverse("generation:model_create")
    base = {"name": "gpt", "model": "openai/gpt-4o-mini", "temperature": "0", "is_active": "on"}
    bad = client.post(url, {**base, "api_key_env": "sk-live-abc123"})
    assert bad.status_code == 200 and b"environment variable" in bad.content
    reserved = client.post(url, {**base, "api_key_env": "OPENAI_API_KEY", "extra_params": '{"api_key": "x"}'})
    assert b"dedicated fields" in reserved.content
    no_provider = client.post(url, {**base, "model": "gpt-4o", "api_key_env": "OPENAI_API_KEY"})
    assert b"provider" in no_provider.content
    ok = client.post(url, {**base, "api_key_env": "OPENAI_API_KEY", "extra_params": '{"top_p": 1}'})
    assert ok.status_code == 302, ok.context["adminform"].form.errors
    config = ModelConfig.objects.get(name="gpt")
    assert config.api_key_env == "OPENAI_API_KEY" and config.extra_params == {"top_p": 1}


CREDENTIAL_URLS = (
    ("https://user:sk-live-123@llm.example.org/v1", b"user name and password"),
    ("https://sk-live-123@llm.example.org/v1", b"user name and password"),
    ("https://llm.example.org/v1?api-key=sk-live-123", b"query string"),
    ("https://llm.example.org/v1#sk-live-123", b"query string"),
)


def test_api_base_with_credentials_or_a_query_string_is_refused_everywhere(client, settings):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from generation import local_llm
    from generation.medagent import ModelSpec

    admin_user = make_user(Role.ADMIN)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    base = {"name": "hosted", "model": "openai/gpt-4o-mini", "temperature": "0", "is_active": "on",
            "api_key_env": "OPENAI_API_KEY"}
    admin_base = {**base, "extra_params": "{}", "created_at_0": "2026-11-22", "created_at_1": "10:00:00"}
    for url, reason in CREDENTIAL_URLS:
        page = client.post(reverse("generation:model_create"), {**base, "api_base": url})
        assert page.status_code == 200 and reason in page.content, url
        admin_page = client.post(reverse("admin:generation_modelconfig_add"), {**admin_base, "api_base": url})
        assert admin_page.status_code == 200 and reason in admin_page.content, url
        assert not ModelConfig.objects.filter(name="hosted").exists()
        with pytest.raises(ValidationError, match="api_base"):
            ModelConfig(name="direct", model="openai/x", api_base=url).full_clean()
        # Writes that skip validation meet the database constraint.
        with pytest.raises(IntegrityError), transaction.atomic():
            ModelConfig.objects.create(name="direct", model="openai/x", api_base=url)
        # And the engine refuses a snapshot that carries one.
        with pytest.raises(ValueError, match="api_base"):
            ModelSpec("openai/x", api_base=url)
        # Nothing of it reached the database.
        assert not ModelConfig.objects.filter(api_base__contains="sk-live").exists()
    settings.LOCAL_LLM_API_BASE = "http://user:pw@127.0.0.1:8081/v1"
    with pytest.raises(ValueError, match="LOCAL_LLM_API_BASE"):
        local_llm.ensure_config()
    ok = client.post(reverse("generation:model_create"), {**base, "api_base": "http://127.0.0.1:8000/v1"})
    assert ok.status_code == 302
    assert ModelConfig.objects.get(name="hosted").api_base == "http://127.0.0.1:8000/v1"


def test_launch_page_validates_and_launches(client):
    client.force_login(make_user(Role.ADMIN))
    ready, unready = make_case(), make_case(facts=[], intent="", goal="")
    models = {r: make_model(f"simulator/{r}") for r in ("patient", "sensemaker", "helper")}
    form = client.get(reverse("generation:job_launch"))
    assert ready.external_id.encode() in form.content and unready.external_id.encode() not in form.content
    data = {"name": "J", "cases": [ready.pk], "traits": ["openness", "neuroticism"], "literacies": ["basic"],
            "sensemaker_model": models["sensemaker"].pk, "patient_model": models["patient"].pk,
            "helper_model": models["helper"].pk, "seed": 1, "max_concurrent_calls": 4}
    missing = client.post(reverse("generation:job_launch"), {**data, "cases": []})
    assert missing.status_code == 200 and b"This field is required" in missing.content
    response = client.post(reverse("generation:job_launch"), data)
    assert response.status_code == 302
    job = models["sensemaker"].jobs_under_test.get()
    assert job.conversations.count() == 2 and job.max_concurrent_calls == 4
    seeds = set(job.conversations.values_list("seed", flat=True))
    assert len(seeds) == 2, "each cell gets its own derived seed"
    page = client.get(reverse("generation:job_detail", args=[job.pk]))
    assert b'hx-trigger="every 2s"' in page.content and b"0 of 2 finished" in page.content


def test_launch_page_with_htmx_shows_errors_in_place_and_opens_the_launched_job(client):
    client.force_login(make_user(Role.ADMIN))
    ready = make_case()
    models = {r: make_model(f"simulator/{r}") for r in ("patient", "sensemaker", "helper")}
    url = reverse("generation:job_launch")
    page = client.get(url).content.decode()
    assert f'hx-post="{url}"' in page and 'method="post"' in page, "htmx-enhanced, and a plain form without JS"
    data = {"name": "J", "cases": [ready.pk], "traits": ["openness"], "literacies": ["basic"],
            "sensemaker_model": models["sensemaker"].pk, "patient_model": models["patient"].pk,
            "helper_model": models["helper"].pk, "seed": 1, "max_concurrent_calls": 4}
    htmx = {"HX-Request": "true", "HX-Target": "launch-form"}
    invalid = client.post(url, {**data, "cases": [], "max_concurrent_calls": 999}, headers=htmx)
    body = invalid.content.decode()
    # Only the form comes back, with its errors and with what the admin had chosen.
    assert invalid.status_code == 200 and "<html" not in body and body.lstrip().startswith("<form")
    assert 'data-testid="launch-errors"' in body and "correct the 2 fields" in body
    assert "This field is required" in body and "less than or equal to 256" in body
    assert 'value="openness"' in body and 'name="name" value="J"' in body
    assert not GenerationJob.objects.exists()
    # A model deactivated while the page was open is refused in the form too.
    models["helper"].is_active = False
    models["helper"].save()
    refused = client.post(url, data, headers=htmx)
    assert refused.status_code == 200 and "<html" not in refused.content.decode()
    assert b"Select a valid choice" in refused.content and not GenerationJob.objects.exists()
    models["helper"].is_active = True
    models["helper"].save()
    launched = client.post(url, data, headers=htmx)
    job = GenerationJob.objects.get()
    assert launched.status_code == 200
    assert launched.headers["HX-Redirect"] == reverse("generation:job_detail", args=[job.pk])
    assert job.conversations.count() == 1
    assert b"Job launched: 1 conversations queued." in client.get(launched.headers["HX-Redirect"]).content


def test_launch_refuses_unready_cases_and_inactive_models():
    models = [make_model("simulator/patient"), make_model(), make_model("simulator/helper")]
    with pytest.raises(services.GenerationError, match="no facts"):
        services.launch_job(None, services.JobRequest("x", [make_case(facts=[])], *models))
    models[1].is_active = False
    models[1].save()
    with pytest.raises(services.GenerationError, match="inactive"):
        services.launch_job(None, services.JobRequest("x", [make_case()], *models))


def test_extra_parameters_never_hold_credentials_even_through_the_django_admin(client):
    admin_user = make_user(Role.ADMIN)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    url = reverse("admin:generation_modelconfig_add")
    base = {"name": "hosted", "model": "openai/gpt-4o-mini", "temperature": "0", "is_active": "on",
            "created_at_0": "2026-11-22", "created_at_1": "10:00:00"}
    for extra, named in (({"extra_headers": {"Authorization": "Bearer sk-live"}}, "Authorization"),
                         ({"aws_secret_access_key": "abc"}, "aws_secret_access_key"),
                         ({"api_key": "sk-live"}, "api_key")):
        page = client.post(url, {**base, "extra_params": json.dumps(extra)})
        assert page.status_code == 200 and named.encode() in page.content, extra
        assert not ModelConfig.objects.filter(name="hosted").exists()
    ok = client.post(url, {**base, "extra_params": json.dumps({"max_completion_tokens": 900, "top_p": 0.9})})
    assert ok.status_code == 302, ok.context["adminform"].form.errors
    assert ModelConfig.objects.get(name="hosted").extra_params["top_p"] == 0.9


def test_a_persona_in_use_is_read_only_in_the_django_admin(client):
    from generation.models import Persona
    from tests.factories import make_conversation

    used = make_conversation().persona
    unused = Persona.objects.exclude(pk=used.pk).first() or Persona.objects.create(
        trait="openness", literacy="advanced", intent="lifestyle_literacy", goal="comfort")
    admin_user = make_user(Role.ADMIN)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    page = client.get(reverse("admin:generation_persona_change", args=[used.pk]))
    assert page.status_code == 200 and b'name="trait"' not in page.content
    assert client.get(reverse("admin:generation_persona_delete", args=[used.pk])).status_code == 403
    editable = client.get(reverse("admin:generation_persona_change", args=[unused.pk]))
    assert b'name="trait"' in editable.content


def _run_job_and_read_transcripts(cases, seed):
    models = [make_model("simulator/patient"), make_model("simulator/sensemaker"), make_model("simulator/helper")]
    job = services.launch_job(None, services.JobRequest(
        "repro", cases, *models, traits=("openness", "neuroticism"), literacies=("basic",), seed=seed,
    ), enqueue_tasks=False)
    for conv_id in job.conversations.values_list("id", flat=True):
        assert services.run_conversation_attempt(conv_id) == services.AttemptOutcome.DONE
    return {
        (c.case.external_id, c.persona.trait): (c.seed, [(m.role, m.stage, m.text) for m in c.messages.all()])
        for c in job.conversations.select_related("case", "persona")
    }, job


def test_the_same_job_seed_reproduces_every_transcript_on_another_installation():
    """Seeds come from the case's imported id and the persona's content, not from database keys."""
    from generation.models import Conversation, GenerationJob, Persona

    case_fields = {"external_id": "repro-1", "text": "A 27-year-old has sudden attacks of a racing heart."}
    first, job = _run_job_and_read_transcripts([make_case(**case_fields)], seed=7)
    first_pks = set(job.conversations.values_list("case_id", "persona_id"))
    # "Another installation": the same case and personas, stored again under other primary keys.
    Conversation.objects.all().delete()
    GenerationJob.objects.all().delete()
    CaseStudy.objects.all().delete()
    Persona.objects.all().delete()
    make_case(external_id="unrelated", text="Another case.")
    Persona.objects.create(trait="extraversion", literacy="advanced", intent="lifestyle_literacy", goal="comfort")
    second, job = _run_job_and_read_transcripts([make_case(**case_fields)], seed=7)
    assert not first_pks & set(job.conversations.values_list("case_id", "persona_id"))
    assert second == first
    assert all(len(messages) >= 6 for _, messages in first.values())
    # The seed does matter: another job seed gives other seeds (and, here, another transcript).
    third, _ = _run_job_and_read_transcripts(list(CaseStudy.objects.filter(external_id="repro-1")), seed=8)
    assert {s for s, _ in third.values()}.isdisjoint({s for s, _ in first.values()})
    assert third != first


def test_a_job_is_labelled_simulated_when_any_role_is_the_simulator(client):
    """Conversation.is_simulated is true when any role is the simulator; the pages label by the same rule,
    not only when the model under test is the simulator."""
    client.force_login(make_user(Role.ADMIN))
    real = {role: make_model(f"openai/{role}", api_base="http://127.0.0.1:9/v1") for role in ("patient", "sensemaker",
                                                                                             "helper")}
    mixed = services.launch_job(None, services.JobRequest(
        "mixed", [make_case()], make_model("simulator/patient"), real["sensemaker"], real["helper"],
        traits=("openness",), literacies=("basic",)), enqueue_tasks=False)
    all_real = services.launch_job(None, services.JobRequest(
        "all real", [make_case()], real["patient"], real["sensemaker"], real["helper"],
        traits=("openness",), literacies=("basic",)), enqueue_tasks=False)
    assert mixed.conversations.get().is_simulated and not all_real.conversations.get().is_simulated
    assert mixed.simulated_roles == ["patient"] and all_real.simulated_roles == []

    page = client.get(reverse("generation:job_detail", args=[mixed.pk])).content.decode()
    assert 'data-testid="job-simulated"' in page and "plays the patient" in page
    fragment = client.get(reverse("generation:job_progress", args=[mixed.pk])).content.decode()
    assert fragment.count('<span class="badge sim">simulated</span>') == 1
    for url in (reverse("generation:job_detail", args=[all_real.pk]),
                reverse("generation:job_progress", args=[all_real.pk])):
        assert "badge sim" not in client.get(url).content.decode()
    overview = client.get(reverse("generation:overview")).content.decode()
    mixed_row = next(row for row in overview.split("<tr>") if ">mixed</a>" in row)
    real_row = next(row for row in overview.split("<tr>") if ">all real</a>" in row)
    assert "badge sim" in mixed_row and "badge sim" not in real_row


def test_overview_links_admins_to_cases_and_models_and_researchers_to_neither(client):
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("generation:overview")).content.decode()
    for name in ("generation:case_list", "generation:model_list", "generation:job_launch"):
        assert 'class="button' in page and f'href="{reverse(name)}"' in page
    client.force_login(make_user(Role.RESEARCHER))
    page = client.get(reverse("generation:overview")).content.decode()
    for name in ("generation:case_list", "generation:model_list", "generation:job_launch"):
        assert f'href="{reverse(name)}"' not in page


def test_case_review_is_audited_with_old_and_new_ground_truth(client):
    from audit.models import AuditEvent

    case = make_case(ground_truth_diagnosis="Generalised anxiety disorder")
    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    client.post(reverse("generation:case_review", args=[case.pk]), {
        "ground_truth_diagnosis": "Panic disorder", "condition": case.condition,
        "intent": case.intent or "lifestyle_literacy",
        "goal": case.goal or "comfort", "facts_text": "I get sudden fear\nMy heart races", "vital_facts_text": "",
    })
    event = AuditEvent.objects.get(action="case.review", object_id=str(case.pk))
    assert event.actor == admin
    assert event.data["old"]["ground_truth_diagnosis"] == "Generalised anxiety disorder"
    assert event.data["new"]["ground_truth_diagnosis"] == "Panic disorder"
    assert event.data["new"]["facts"] == ["I get sudden fear", "My heart races"]


def test_model_configuration_create_and_edit_are_audited_with_the_changed_fields(client):
    from audit.models import AuditEvent

    admin = make_user(Role.ADMIN)
    client.force_login(admin)
    base = {"name": "judge-ish", "model": "openai/gpt-4o-mini", "temperature": "0", "is_active": "on"}
    client.post(reverse("generation:model_create"), base)
    config = ModelConfig.objects.get(name="judge-ish")
    created = AuditEvent.objects.get(action="model_config.create", object_id=str(config.pk))
    assert created.actor == admin and created.data["new"]["model"] == "openai/gpt-4o-mini"
    client.post(reverse("generation:model_edit", args=[config.pk]), {**base, "temperature": "0.7"})
    edited = AuditEvent.objects.get(action="model_config.edit", object_id=str(config.pk))
    assert edited.data == {"old": {"temperature": 0.0}, "new": {"temperature": 0.7}}
    # A refused edit (a key in the parameters) changes nothing and records nothing.
    page = client.post(reverse("generation:model_edit", args=[config.pk]), {**base, "extra_params": '{"api_key": "x"}'})
    assert page.status_code == 200
    config.refresh_from_db()
    assert config.temperature == 0.7 and config.extra_params == {}
    assert AuditEvent.objects.filter(object_id=str(config.pk), object_type="generation.modelconfig").count() == 2
