"""Blinding in validation mode: crawl everything the clinician can reach and perform every action, as
tests/rating/test_rating_blinding.py does for the rating page. Besides the model under test (its model
string, provider, job, persona, seed), neither the judge's identity (model string, provider,
configuration name, run name, prompt version, raw reply) nor another clinician's verdicts may appear;
a rationale that names a model is shown redacted. The ground truth appears only in the
diagnostic-accuracy context."""
import re
from collections import deque
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from judging import validation
from judging.models import JudgeItem, JudgeScore
from rating import assignment as assigning
from tests.factories import make_model, make_token, make_user
from tests.judging.validation_support import all_agree
from tests.rating.test_rating_blinding import (  # noqa: F401 - secret_world is a fixture
    GROUND_TRUTH,
    SECRETS,
    outside_ground_truth_context,
    secret_world,
)

JUDGE_SECRETS = ["judge-secret-jx", "anthropic", "JudgeSecretConfig", "JudgeRunSecretName", "judge-prompt-q5",
                 "RAW-REPLY-SECRET", "OTHER-VERDICT-COMMENT-V3", "OTHER-VERDICT-OVERALL-W8"]


@pytest.fixture
def secret_validation(secret_world):  # noqa: F811 - the fixture imported above
    """rating's secret world (distinctive model, provider, job, persona; another rater's rating) plus a
    judge with distinctive names scoring its conversations, and a validation campaign over them."""
    rating_campaign, rater, other, _ = secret_world
    convs = [item.conversation for item in rating_campaign.items.select_related("conversation")]
    from judging.models import JudgeRun
    from rating.rubric_files import default_rubric

    rubric = default_rubric()
    judge = make_model("anthropic/judge-secret-jx", name="JudgeSecretConfig")
    run = JudgeRun.objects.create(name="JudgeRunSecretName", rubric=rubric, judge_model=judge,
                                  model_snapshot={"model": "anthropic/judge-secret-jx"},
                                  prompt_version="judge-prompt-q5", status=JudgeRun.Status.DONE, seed=4242)
    for conv in convs:
        item = JudgeItem.objects.create(run=run, conversation=conv, status="done", raw_reply="RAW-REPLY-SECRET")
        for axis in rubric.axes.all():
            if axis.is_rated:
                JudgeScore.objects.create(
                    item=item, axis=axis, value=axis.allowed_values()[0], cited_messages=[2, 4],
                    rationale=f"As Judge-Secret-JX I find secret-model-xyz weak on {axis.key} (message 2).")
    admin = make_user(Role.ADMIN)
    v = validation.create_validation_campaign(admin, judge_run=run, name="Second look", raters=[rater, other],
                                              overlap_k=2, lease_minutes=60, open_now=True)
    theirs = assigning.next_assignment(v.campaign, other)
    changes, verdicts = validation.verdict_changes_from_post({
        **all_agree(v), "verdict__flow": "disagree", "value__flow": "4", "comment__flow": "OTHER-VERDICT-COMMENT-V3",
        "overall_comment": "OTHER-VERDICT-OVERALL-W8"})
    validation.submit_review(theirs, other, changes, verdicts)
    return v, rater, theirs


def test_clinician_never_sees_the_model_the_judge_or_other_verdicts(secret_validation):
    v, rater, theirs = secret_validation
    campaign = v.campaign
    client = Client()
    client.force_login(rater)
    hx = {"HTTP_HX_REQUEST": "true"}
    bodies = []

    def check(url, response):
        bodies.append((url, response.status_code, response.content.decode("utf-8", "replace")))

    # Rating's own "next" sends the clinician to the validation page.
    response = client.post(reverse("rating:next", args=[campaign.pk]), follow=True)
    check("next", response)
    mine = rater.assignments.get(status="active")
    assert response.redirect_chain[-1][0] == reverse("judge_validation:validate", args=[mine.pk])
    page = response.content.decode()
    assert "[name withheld]" in page and 'data-cited="2,4"' in page
    save = reverse("judge_validation:save", args=[mine.pk])
    for data in ({"verdict__flow": "agree"}, {"value__flow": "3"}, {"value__flow": "9"}, {"comment__flow": "mine"},
                 {"verdict__severity": "maybe"}, {"overall_comment": "mine"}, {"note__1": "x"}):
        check(save, client.post(save, data, **hx))
    # Rating's save and submit refuse this assignment: no rating.Rating scores for a validation campaign.
    check("rating save", client.post(reverse("rating:save", args=[mine.pk]), {"value__flow": "2"}, **hx))
    assert bodies[-1][1] == 409
    check("rating submit", client.post(reverse("rating:submit", args=[mine.pk]), {"value__flow": "2"}, follow=True))
    for url, data, extra in [
        (reverse("rating:heartbeat", args=[mine.pk]), {"active_seconds": "4"}, hx),
        (reverse("rating:flag", args=[mine.pk]), {"category": "other", "reason": "mine"}, hx),
        (reverse("rating:flag", args=[mine.pk]), {"category": "other", "reason": "mine"}, {}),
        (reverse("judge_validation:submit", args=[mine.pk]), {}, {}),  # incomplete: errors page
    ]:
        check(url, client.post(url, data, follow=True, **extra))
    response = client.post(reverse("judge_validation:submit", args=[mine.pk]),
                           {**all_agree(v), "then": "next"}, follow=True)
    check("submit", response)
    nxt = rater.assignments.get(status="active")
    check("skip", client.post(reverse("rating:skip", args=[nxt.pk]), {"reason": "mine"}, follow=True))
    check("revise", client.post(save, {"value__flow": "3"}, **hx))
    check("theirs", client.get(reverse("judge_validation:validate", args=[theirs.pk])))
    assert bodies[-1][1] == 404
    seen, queue = set(), deque(["/", reverse("rating:home")])
    while queue and len(seen) < 60:
        url = queue.popleft()
        if url in seen or url.startswith(("/static/", "/accounts/logout")):
            continue
        seen.add(url)
        response = client.get(url, follow=True)
        check(url, response)
        if "html" in response.headers.get("Content-Type", ""):
            queue.extend(u for u in re.findall(r'href="(/[^"#]*)', response.content.decode())
                         if urlsplit(u).path not in seen)
    assert reverse("rating:rate", args=[mine.pk]) in seen
    token = make_token(rater)
    for url in (reverse("api:me"), reverse("api:my_assignments")):
        check(url, client.get(url))
        check(url + " (token)", Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}"))

    assert len(bodies) > 20
    ground_truth_seen = False
    for url, status, body in bodies:
        lowered = body.lower()
        for secret in SECRETS + JUDGE_SECRETS:
            assert secret.lower() not in lowered, f"{secret!r} leaked in {url} ({status})"
        if GROUND_TRUTH in body:
            ground_truth_seen = True
            assert GROUND_TRUTH not in outside_ground_truth_context(body), f"ground truth outside its context: {url}"
    assert ground_truth_seen, "the diagnostic-accuracy axes must show the ground truth"


def test_a_judge_or_model_name_is_withheld_however_it_is_spaced_or_cased():
    from judging.validation import _mentioned
    from judging.validation_selectors import REDACTED, redact

    terms = {"gpt-4o-mini": "the judge model", "acme judge": "the judge's model configuration"}
    for spelled in ("gpt-4o-mini", "GPT 4o Mini", "gpt_4o.mini", "Gpt4oMini", "ACME-Judge", "acme   judge"):
        assert redact(f"As {spelled} I think flow was fine.", terms) == f"As {REDACTED} I think flow was fine."
        assert _mentioned(f"Scored by {spelled}.", terms), spelled
    # Whole words only: a longer word that merely starts with a name stays as it is.
    assert redact("gpt-4o-minimal and acmejudges", terms) == "gpt-4o-minimal and acmejudges"
    assert not _mentioned("an ordinary rationale about sleep", terms)
