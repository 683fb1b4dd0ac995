import json

from django import forms

from .case_import import MAX_BYTES
from .models import CaseStudy, Goal, Intent, Literacy, ModelConfig, Trait
from .services import DEFAULT_LITERACIES, DEFAULT_TRAITS


class CaseImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row, or JSONL: id, text, ground_truth_diagnosis, "
                                     "optional condition, facts, vital_facts, intent, goal.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # Refuse an oversized upload by its size, before reading it into memory.
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                f"{upload.name} is {upload.size // 1024} KB; the limit is {MAX_BYTES // 1024} KB.")
        return upload


class CaseReviewForm(forms.ModelForm):
    facts_text = forms.CharField(
        label="Facts (one per line)", widget=forms.Textarea(attrs={"rows": 12}), required=False
    )
    vital_facts_text = forms.CharField(
        label="Vital-sign facts (one per line)", widget=forms.Textarea(attrs={"rows": 4}), required=False
    )

    class Meta:
        model = CaseStudy
        fields = ["ground_truth_diagnosis", "condition", "intent", "goal"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["intent"].required = True
        self.fields["goal"].required = True
        self.fields["facts_text"].initial = "\n".join(self.instance.facts)
        self.fields["vital_facts_text"].initial = "\n".join(self.instance.vital_facts)

    def clean_facts_text(self):
        facts = [line.strip() for line in self.cleaned_data["facts_text"].splitlines() if line.strip()]
        if not facts:
            raise forms.ValidationError("A case needs at least one fact for the simulated patient.")
        return facts

    def clean_vital_facts_text(self):
        return [line.strip() for line in self.cleaned_data["vital_facts_text"].splitlines() if line.strip()]

    def review_values(self) -> dict:
        """The reviewed fields for generation.services.review_case (the form itself never saves)."""
        data = self.cleaned_data
        return {"ground_truth_diagnosis": data["ground_truth_diagnosis"], "condition": data["condition"],
                "intent": data["intent"], "goal": data["goal"], "facts": data["facts_text"],
                "vital_facts": data["vital_facts_text"]}


class ModelConfigForm(forms.ModelForm):
    extra_params = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Other LiteLLM parameters as JSON, e.g. {"top_p": 1}. Not for keys.',
    )

    class Meta:
        model = ModelConfig
        fields = ["name", "model", "temperature", "max_tokens", "api_base", "api_key_env", "extra_params", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["extra_params"] = json.dumps(self.instance.extra_params or {}) if self.instance.pk else ""

    def clean_extra_params(self):
        raw = (self.cleaned_data.get("extra_params") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object.")
        return value  # ModelConfig.clean() checks the names (for the Django admin too)

    def clean_model(self):
        model = self.cleaned_data["model"].strip()
        if "/" not in model:
            raise forms.ValidationError("Use a LiteLLM model string with its provider, e.g. openai/gpt-4o-mini.")
        return model


class JobLaunchForm(forms.Form):
    name = forms.CharField(max_length=200)
    cases = forms.ModelMultipleChoiceField(
        queryset=CaseStudy.objects.none(), widget=forms.CheckboxSelectMultiple,
        help_text="Only case studies with facts, intent and goal can be used.",
    )
    traits = forms.MultipleChoiceField(
        choices=Trait.choices, initial=list(DEFAULT_TRAITS), widget=forms.CheckboxSelectMultiple,
        help_text="Dominant Big Five trait (High; the other four Low).",
    )
    literacies = forms.MultipleChoiceField(
        choices=Literacy.choices, initial=list(DEFAULT_LITERACIES), widget=forms.CheckboxSelectMultiple,
        label="Health literacy",
    )
    sensemaker_model = forms.ModelChoiceField(
        queryset=ModelConfig.objects.none(), label="Model under test (sensemaker)"
    )
    patient_model = forms.ModelChoiceField(queryset=ModelConfig.objects.none())
    helper_model = forms.ModelChoiceField(queryset=ModelConfig.objects.none(), help_text="Fact extraction, redundancy.")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31)
    max_concurrent_calls = forms.IntegerField(
        initial=8, min_value=1, max_value=256, help_text="Per job, across all workers: respect the provider's limit."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models = ModelConfig.objects.filter(is_active=True)
        for name in ("sensemaker_model", "patient_model", "helper_model"):
            self.fields[name].queryset = models
        self.fields["cases"].queryset = CaseStudy.objects.exclude(facts=[]).exclude(intent="").exclude(goal="")

    def conversation_count(self) -> int:
        data = self.cleaned_data
        return len(data["cases"]) * len(data["traits"]) * len(data["literacies"])


__all__ = ["CaseImportForm", "CaseReviewForm", "ModelConfigForm", "JobLaunchForm", "Intent", "Goal"]
