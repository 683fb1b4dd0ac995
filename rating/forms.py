import functools
import json
from dataclasses import dataclass
from types import MappingProxyType

from django import forms
from django.forms.utils import ErrorList
from django.utils.safestring import SafeString

from accounts.models import User
from accounts.roles import Role
from generation.models import Conversation, GenerationJob, Goal, Intent, Literacy, Trait

from .models import Campaign, Rubric, SafetyFlag

BLINDING_HELP = "Raters see the name and description: do not mention models, jobs or personas."


def _raters():
    return User.objects.filter(role=Role.RATER, is_active=True).order_by("username")


class RaterChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display_name} ({obj.username}, {obj.pseudonym})"


class CampaignSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, help_text=BLINDING_HELP)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=BLINDING_HELP)
    raters = RaterChoiceField(queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple)
    overlap_k = forms.IntegerField(min_value=1, max_value=20, initial=2, label="Overlap k (raters per conversation)")
    lease_minutes = forms.IntegerField(
        min_value=1, max_value=24 * 60, initial=60,
        help_text="How long a rater holds a conversation without the page open before it goes to someone else.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["raters"].queryset = _raters()


class CampaignCreateForm(CampaignSettingsForm):
    rubric = forms.ModelChoiceField(queryset=Rubric.objects.order_by("slug", "-version"))
    jobs = forms.ModelMultipleChoiceField(
        queryset=GenerationJob.objects.order_by("-created_at"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any job (and imported conversations).",
    )
    sensemaker_models = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                                  label="Model under test")
    conditions = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    traits = forms.MultipleChoiceField(choices=Trait.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                       label="Persona: dominant trait")
    literacies = forms.MultipleChoiceField(choices=Literacy.choices, required=False,
                                           widget=forms.CheckboxSelectMultiple, label="Persona: health literacy")
    intents = forms.MultipleChoiceField(choices=Intent.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                        label="Persona: intent")
    goals = forms.MultipleChoiceField(choices=Goal.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                      label="Persona: goal")
    limit = forms.IntegerField(min_value=1, required=False, label="At most this many conversations",
                               help_text="A reproducible random sample of the matches (leave empty for all).")
    seed = forms.IntegerField(initial=0, required=False, help_text="Seed of the sample.")

    CAMPAIGN_FIELDS = ["name", "description", "rubric", "raters", "overlap_k", "lease_minutes"]
    FILTER_FIELDS = ["jobs", "sensemaker_models", "conditions", "traits", "literacies", "intents", "goals", "limit",
                     "seed"]
    field_order = CAMPAIGN_FIELDS + FILTER_FIELDS

    def campaign_fields(self):
        return [self[name] for name in self.CAMPAIGN_FIELDS]

    def filter_fields(self):
        return [self[name] for name in self.FILTER_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        done = Conversation.objects.filter(status=Conversation.Status.DONE)
        # order_by() on the field itself: the model's default ordering would defeat DISTINCT.
        models = done.exclude(sensemaker_model="").order_by("sensemaker_model").values_list(
            "sensemaker_model", flat=True).distinct()
        conditions = done.exclude(condition="").order_by("condition").values_list("condition", flat=True).distinct()
        self.fields["sensemaker_models"].choices = [(m, m) for m in models]
        self.fields["conditions"].choices = [(c, c) for c in conditions]
        default = Rubric.objects.filter(is_default=True).first()
        if default:
            self.fields["rubric"].initial = default.pk


class CampaignEditForm(CampaignSettingsForm):
    def __init__(self, *args, campaign: Campaign, **kwargs):
        initial = {
            "name": campaign.name, "description": campaign.description, "overlap_k": campaign.overlap_k,
            "lease_minutes": campaign.lease_minutes, "raters": list(campaign.raters.values_list("pk", flat=True)),
        }
        super().__init__(*args, initial=initial, **kwargs)
        if campaign.status != Campaign.Status.DRAFT:
            self.fields["overlap_k"].disabled = True
            self.fields["overlap_k"].help_text = "Fixed once the campaign has been opened."


class GoldForm(forms.Form):
    conversation = forms.IntegerField(min_value=1, label="Conversation number",
                                      help_text="A finished conversation (it is added to the campaign if needed).")

    def __init__(self, *args, rubric: Rubric, **kwargs):
        super().__init__(*args, **kwargs)
        self.axis_fields = []
        for axis in rubric.axes.all():
            if not axis.is_rated or axis.is_nominal:  # gold answers are numbers; nominal axes use a reference
                continue
            labels = {p.get("value"): p.get("label", "") for p in axis.points}
            choices = [("", "—")] + [(v, f"{v} {labels.get(v, '')}".strip()) for v in axis.allowed_values()]
            name = f"gold__{axis.key}"
            self.fields[name] = forms.TypedChoiceField(choices=choices, required=False, label=axis.name,
                                                       coerce=int, empty_value=None)
            self.axis_fields.append(name)

    def scores(self) -> dict:
        return {name.removeprefix("gold__"): self.cleaned_data.get(name) for name in self.axis_fields}


class SkipForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             label="Why are you skipping this conversation?")


class SafetyFlagForm(forms.Form):
    category = forms.ChoiceField(choices=[("", "Choose…")] + list(SafetyFlag.Category.choices), label="Concern")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, label="What is the concern?")
    message = forms.IntegerField(min_value=1, required=False, label="Message number (optional)")


@dataclass(frozen=True)
class _BlankField:
    html: SafeString
    label: str
    id_for_label: str
    errors: tuple = ()

    def __str__(self):
        return self.html

    def __html__(self):
        return self.html


class RenderedBlankForm:
    """An unbound form with its fields' HTML rendered once (see `blank_form`). Templates use it as they use
    the form: `form.field` (its widget's HTML, `.label`, `.id_for_label`, `.errors`), `form.errors`,
    `form.non_field_errors`."""

    errors = MappingProxyType({})  # none, and read-only: one instance serves every request

    def __init__(self, form_class):
        form = form_class()
        self._fields = {name: _BlankField(html=SafeString(str(bound)), label=str(bound.label),
                                          id_for_label=bound.id_for_label)
                        for name, bound in ((name, form[name]) for name in form.fields)}

    def __getitem__(self, name):
        return self._fields[name]

    def non_field_errors(self):
        return ErrorList()


@functools.cache
def blank_form(form_class) -> RenderedBlankForm:
    """`form_class()` rendered once per process, for a page that shows the same empty form on every request.
    Django renders each widget through its template engine: the rating page's four side-panel fields cost
    1.5 ms of its 11 ms of rendering, every time, for the same HTML. Only for forms whose empty rendering
    never changes (fixed choices, no request data)."""
    return RenderedBlankForm(form_class)


class FlagHandleForm(forms.Form):
    action = forms.ChoiceField(choices=[("acknowledge", "Acknowledge"), ("resolve", "Resolve"),
                                        ("reopen", "Reopen")])
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)


class RubricUploadForm(forms.Form):
    file = forms.FileField(label="Rubric JSON file", help_text="Same format as rating/rubrics/*.json.")
    make_default = forms.BooleanField(required=False, label="Make it the default rubric for new campaigns")

    MAX_BYTES = 512 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(f"{upload.name}: larger than {self.MAX_BYTES // 1024} KB.")
        try:
            data = json.loads(upload.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise forms.ValidationError(f"{upload.name}: not UTF-8 text.") from None
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"{upload.name}: not valid JSON (line {exc.lineno}: {exc.msg}).") from None
        if not isinstance(data, dict):
            raise forms.ValidationError(f"{upload.name}: the top level must be an object with slug, name and axes.")
        return data
