"""Rater pages through the Django test client: htmx draft saves, reload, errors, revisions, closing."""
import re

import pytest
from django.http import HttpRequest
from django.urls import reverse

from audit.models import AuditEvent
from generation.models import Conversation, Message
from rating import assignment as assigning
from rating import services
from rating.campaigns import close_campaign
from rating.models import Assignment, Rating
from tests.factories import PASSWORD, make_user
from tests.rating.rating_support import build_campaign, full_values

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def setup(db, client):
    campaign, raters = build_campaign(n_items=3, n_raters=2, k=2)
    client.login(request=HttpRequest(), username=raters[0].username, password=PASSWORD)
    return campaign, raters, client


def _start(client, campaign):
    response = client.post(reverse("rating:next", args=[campaign.pk]))
    assert response.status_code == 302
    match = re.search(r"/rate/a/(\d+)/$", response["Location"])
    assert match, response["Location"]
    return Assignment.objects.get(pk=int(match.group(1)))


def test_home_lists_campaigns_and_continue_link(setup):
    campaign, raters, client = setup
    page = client.get(reverse("rating:home")).content.decode()
    assert "My rating campaigns" in page and campaign.name in page
    assert "Rate the next conversation" in page
    a = _start(client, campaign)
    page = client.get(reverse("rating:home")).content.decode()
    assert "Continue where you left off" in page and reverse("rating:rate", args=[a.pk]) in page
    assert "0</strong> done of about 3 expected of you · 1 in progress · 3 still open to you" in page


def test_rating_page_shows_transcript_axes_anchors_smog_and_ground_truth(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    conv = a.item.conversation
    Conversation.objects.filter(pk=conv.pk).update(smog_grade=11.46)
    Message.objects.filter(conversation=conv, index=1).update(smog_grade=9.04)
    Message.objects.create(conversation=conv, index=6, role="sensemaker", stage=3, text="A second stage-3 reply.")
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert 'class="msg patient"' in html and 'class="msg sensemaker"' in html
    assert "#1</span>" in html and "#6</span>" in html
    assert "Stage 3 · Providing information" in html and "data-stage-label" in html
    assert "SMOG 9.0" in html and "11.5" in html
    assert "tone was dismissive, insensitive or alarming" in html  # anchors are visible
    for axis in campaign.rubric.axes.all():
        if axis.is_rated:
            assert f'name="value__{axis.key}"' in html
    assert 'name="value__smog"' not in html  # computed axes are not rated by hand
    # Ground truth: beside the (first) Providing-information message and in the diagnostic group, nowhere else.
    assert html.count(conv.ground_truth_diagnosis) == 2
    assert 'href="#msg-6">#6</a>' in html
    assert html.count("data-ground-truth-context") == 2
    assert "js/rating.js" in html and 'id="shortcuts"' in html


def test_smog_is_computed_when_not_stored(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    Message.objects.filter(conversation=a.item.conversation, index=1).update(
        text="The psychological evaluation indicates generalized anxiety. Consider gradual exposure therapy.",
        smog_grade=None)
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    from generation.readability import smog_grade
    expected = smog_grade("The psychological evaluation indicates generalized anxiety. Consider gradual exposure "
                          "therapy.")
    assert f"SMOG {expected:.1f}" in html
    assert "computed now" in html


def test_smog_without_stored_value_or_module_says_not_computed(setup, monkeypatch):
    from rating import selectors

    campaign, raters, client = setup
    a = _start(client, campaign)
    monkeypatch.setattr(selectors, "_readability", lambda: None)
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert "SMOG grade of the sensemaker's messages: <span>not computed</span>" in html
    assert "SMOG 8" not in html and "Not computed." in html


def test_htmx_saves_each_change_and_a_reload_restores_everything(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    save = reverse("rating:save", args=[a.pk])
    for data in ({"value__susceptibility": "3"}, {"comment__susceptibility": "gave odds"},
                 {"value__diagnosis_soft": "1"}, {"overall_comment": "good flow"},
                 {"problematic__3": ["0", "1"]}, {"note__3": "overconfident"}):
        response = client.post(save, data, **HX)
        assert response.status_code == 200, response.content
        assert "Draft saved" in response.content.decode()
        assert 'hx-swap-oob="innerHTML"' in response.content.decode()
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert re.search(r'name="value__susceptibility" value="3" checked', html)
    assert re.search(r'name="value__diagnosis_soft" value="1" checked', html)
    assert ">gave odds</textarea>" in html and ">good flow</textarea>" in html and ">overconfident</textarea>" in html
    assert re.search(r'name="problematic__3" value="1" form="rating-form"\s+checked', html)


def test_invalid_save_answers_422_with_the_reason_in_the_field_slot(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    response = client.post(reverse("rating:save", args=[a.pk]), {"value__flow": "9"}, **HX)
    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="err-value__flow"' in body and "takes 1 to 4; got 9" in body and "Not saved" in body


def test_submit_with_missing_axes_shows_errors_in_the_page(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    response = client.post(reverse("rating:submit", args=[a.pk]), {"value__flow": "3"}, follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0].endswith(reverse("rating:rate", args=[a.pk]))
    assert 'id="error-summary"' in html
    assert "Choose a score for Perceived susceptibility." in html
    assert 'href="#f-value__severity"' in html
    assert re.search(r'id="err-value__benefits">Choose a score for Perceived benefits.', html)
    assert re.search(r'name="value__flow" value="3" checked', html)  # what was given is kept
    # The errors are shown once (post/redirect/get): a reload shows the draft without them.
    assert 'id="error-summary"' not in client.get(reverse("rating:rate", args=[a.pk])).content.decode()


def test_submit_opens_the_next_conversation_and_revision_is_audited(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    response = client.post(reverse("rating:submit", args=[a.pk]), {**full_values(campaign), "then": "next"})
    assert response.status_code == 302
    nxt = Assignment.objects.get(rater=raters[0], status="active")
    assert response["Location"] == reverse("rating:rate", args=[nxt.pk]) and nxt.pk != a.pk
    # Revise the submitted one from its page.
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert "saved at once as a revision" in html
    response = client.post(reverse("rating:save", args=[a.pk]), {"value__flow": "1"}, **HX)
    assert "Revision saved" in response.content.decode()
    event = AuditEvent.objects.get(action="rating.revise")
    assert event.data["old"] == {"value__flow": 4} and event.data["new"] == {"value__flow": 1}
    # "Submit and stop" goes back to the campaign page without taking another conversation.
    response = client.post(reverse("rating:submit", args=[nxt.pk]), {**full_values(campaign), "then": "stop"})
    assert response["Location"] == reverse("rating:campaign", args=[campaign.pk])
    assert not Assignment.objects.filter(rater=raters[0], status="active").exists()


def test_closed_campaign_refuses_changes_and_shows_it(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    client.post(reverse("rating:submit", args=[a.pk]), {**full_values(campaign), "then": "stop"})
    close_campaign(make_user("admin"), campaign)
    response = client.post(reverse("rating:save", args=[a.pk]), {"value__flow": "1"}, **HX)
    assert response.status_code == 409 and "closed" in response.content.decode()
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert "can no longer be changed" in html and 'data-editable="0"' in html
    assert Rating.objects.get(assignment=a).scores.get(axis__key="flow").value == 4


def test_another_raters_assignment_is_404_everywhere(setup):
    campaign, (r1, r2), client = setup
    theirs = assigning.next_assignment(campaign, r2)
    for name, method, data in [("rating:rate", "get", {}), ("rating:save", "post", {"value__flow": "1"}),
                               ("rating:submit", "post", {}), ("rating:heartbeat", "post", {}),
                               ("rating:skip", "post", {"reason": "x"}),
                               ("rating:flag", "post", {"category": "other", "reason": "x"})]:
        response = getattr(client, method)(reverse(name, args=[theirs.pk]), data)
        assert response.status_code == 404, name
    assert not Rating.objects.get(assignment=theirs).scores.exists()


def test_skip_and_flag_from_the_page(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    response = client.post(reverse("rating:flag", args=[a.pk]),
                           {"category": "harmful_advice", "reason": "Suggested stopping medication.", "message": "2"},
                           **HX)
    assert response.status_code == 200 and "Sent to the clinical lead" in response.content.decode()
    response = client.post(reverse("rating:flag", args=[a.pk]), {"category": "", "reason": ""}, **HX)
    assert response.status_code == 422 and "This field is required" in response.content.decode()
    response = client.post(reverse("rating:skip", args=[a.pk]), {"reason": "I treated this patient."})
    a.refresh_from_db()
    assert a.status == "skipped"
    assert response.status_code == 302 and response["Location"] != reverse("rating:rate", args=[a.pk])


@pytest.mark.parametrize("partial", ["flag-panel", "skip-panel"])
def test_the_pages_empty_side_forms_render_as_the_forms_themselves(partial):
    """The rating page renders its empty flag and skip forms once per process (forms.blank_form): the
    panels must be the HTML the forms would give, field by field and as the page shows them."""
    from django.template.loader import render_to_string

    from rating.forms import SafetyFlagForm, SkipForm, blank_form

    for form_class in (SafetyFlagForm, SkipForm):
        form, blank = form_class(), blank_form(form_class)
        for name in form.fields:
            assert str(blank[name]) == str(form[name])
            assert (blank[name].label, blank[name].id_for_label, list(blank[name].errors)) == (
                form[name].label, form[name].id_for_label, list(form[name].errors))
        assert not blank.errors and not blank.non_field_errors()
    page = {"assignment_id": 7, "editable": True, "is_submitted": False}

    def panel(**forms):
        return render_to_string(f"rating/rate.html#{partial}", {"page": page, **forms})

    html = panel(flag_form=blank_form(SafetyFlagForm), skip_form=blank_form(SkipForm))
    assert html == panel(flag_form=SafetyFlagForm(), skip_form=SkipForm())
    assert "<textarea" in html and "/rate/a/7/" in html


def test_the_score_fields_escape_rubric_text_and_lock_once_the_campaign_closes(setup):
    """The score fields are rendered by the Jinja2 engine (rating/templatetags/rating_jinja.py): rubric text
    is escaped as in the rest of the page, and a closed campaign's fields are disabled."""
    from rating import selectors
    from rating.models import RubricAxis

    campaign, raters, client = setup
    axis = RubricAxis.objects.filter(rubric=campaign.rubric, kind="ordinal").order_by("order").first()
    axis.help_text = '<script>alert("help")</script>'
    axis.points = [{**p, "anchor": '"><img src=x onerror=alert(1)>'} for p in axis.points]
    axis.save()  # before any page: rubric_axes reads a version once per process
    selectors.rubric_axes.cache_clear()
    a = _start(client, campaign)
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;help&#34;)&lt;/script&gt;" in html and "&#34;&gt;&lt;img src=x" in html
    fields = html[html.index('id="rating-form"'):html.index("</form>", html.index('id="rating-form"'))]
    assert f'hx-post="/rate/a/{a.pk}/save/"' in fields and " disabled" not in fields
    close_campaign(make_user("admin"), campaign)
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    fields = html[html.index('id="rating-form"'):html.index("</form>", html.index('id="rating-form"'))]
    radios = re.findall(r'<input type="radio"[^>]*>', fields)
    assert radios and all("disabled" in radio for radio in radios)
    assert "data-clear-axis" not in fields


def _message_item(html: str, message) -> str:
    start = html.index(f'id="msg-{message.index + 1}"')
    return html[start:html.index("</li>", start)]


def test_the_transcript_escapes_message_text_and_shows_the_raters_notes(setup):
    """The transcript is rendered by the Jinja2 engine (rating/templatetags/rating_jinja.py): message text
    is escaped with its line breaks kept, and a sensemaker message's note and problematic mark show."""
    campaign, raters, client = setup
    a = _start(client, campaign)
    message = Message.objects.filter(conversation_id=a.item.conversation_id, role="sensemaker").order_by("index")[0]
    message.text = 'First line <script>alert("x")</script>\nsecond line'
    message.save()
    services.save_rating_draft(a, raters[0], services.changes_from_post(
        {f"problematic__{message.index}": "1", f"note__{message.index}": "Too </textarea><b>blunt</b>"}))
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    item = _message_item(html, message)
    assert "<script>alert" not in html and "</textarea><b>" not in html
    assert "First line &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>second line" in item
    assert '<span class="badge failed">problematic</span>' in item and "<details class=\"msg-note\" open>" in item
    assert re.search(rf'name="problematic__{message.index}" value="1" form="rating-form"\s+checked', item)
    assert "Too &lt;/textarea&gt;&lt;b&gt;blunt&lt;/b&gt;</textarea>" in item
    assert f'hx-post="/rate/a/{a.pk}/save/"' in item and " disabled" not in item
    close_campaign(make_user("admin"), campaign)
    html = client.get(reverse("rating:rate", args=[a.pk])).content.decode()
    item = _message_item(html, message)
    assert re.search(r"<textarea[^>]*\sdisabled", item) and "checked disabled" in item


def test_heartbeat_fragment(setup):
    campaign, raters, client = setup
    a = _start(client, campaign)
    response = client.post(reverse("rating:heartbeat", args=[a.pk]), {"active_seconds": "3"}, **HX)
    assert response.status_code == 200 and "Held for you until" in response.content.decode()


def test_non_members_and_draft_campaigns_are_404(setup):
    campaign, raters, client = setup
    stranger = make_user("rater")
    client.logout()
    client.login(request=HttpRequest(), username=stranger.username, password=PASSWORD)
    assert client.post(reverse("rating:next", args=[campaign.pk])).status_code == 404
    assert client.get(reverse("rating:campaign", args=[campaign.pk])).status_code == 404


def test_progress_counts_are_not_multiplied_by_joins(setup):
    """Counting items and assignments in one joined query multiplies them; the counts must be exact."""
    from rating.selectors import campaign_overview, rater_campaigns

    campaign, (r1, r2), client = setup
    for rater in (r1, r2):
        for _ in range(2):
            a = assigning.next_assignment(campaign, rater)
            services.submit_rating(a, rater, services.changes_from_post(full_values(campaign)))
    skipped = assigning.next_assignment(campaign, r1)
    assigning.skip_assignment(skipped, r1, "conflict")
    row = rater_campaigns(r1).get(pk=campaign.pk)
    assert (row.my_submitted, row.my_active, row.my_skipped, row.item_count, row.roster) == (2, 0, 1, 3, 2)
    overview = campaign_overview().get(pk=campaign.pk)
    assert (overview.item_count, overview.submitted, overview.active) == (3, 4, 0)
    home = client.get(reverse("rating:home")).content.decode()
    # The rater's share: 3 conversations x k = 2 / 2 raters.
    assert "<strong>2</strong> done of about 3 expected of you · 1 skipped · 0 still open to you" in home
