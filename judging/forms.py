from django import forms

from generation.models import ModelConfig
from rating.models import Rubric

from .services import MAX_CONCURRENT_CALLS, MAX_SAMPLES


class JudgeLaunchForm(forms.Form):
    judge_model = forms.ModelChoiceField(
        queryset=ModelConfig.objects.none(), label="Judge model",
        help_text="Any model configuration; its settings are recorded with the run.",
    )
    rubric = forms.ModelChoiceField(
        queryset=Rubric.objects.none(), required=False, empty_label="The campaign's rubric",
        help_text="Computed axes (e.g. SMOG) are not asked of the judge.",
    )
    samples = forms.IntegerField(
        initial=1, min_value=1, max_value=MAX_SAMPLES, label="Samples per conversation",
        help_text="More than one measures the judge's self-consistency; each sample has its own seed.",
    )
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**62)
    max_concurrent_calls = forms.IntegerField(
        initial=8, min_value=1, max_value=MAX_CONCURRENT_CALLS, label="Calls in flight",
        help_text="Per run, across all workers: respect the provider's limit.",
    )
    name = forms.CharField(max_length=200, required=False, help_text="Optional; named after the judge if empty.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judge_model"].queryset = ModelConfig.objects.filter(is_active=True).order_by("name")
        self.fields["rubric"].queryset = Rubric.objects.order_by("slug", "-version")

    def apply_errors(self, errors: dict) -> None:
        """A service's errors by field, shown where they belong (unknown fields go to the top)."""
        for field, message in errors.items():
            self.add_error(field if field in self.fields else None, message)
