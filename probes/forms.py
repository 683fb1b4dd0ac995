from django import forms

from generation.models import ModelConfig

from .models import ProbeBattery
from .services import MAX_SAMPLES


class BatteryImportForm(forms.Form):
    file = forms.FileField(help_text="A battery file in JSON lines: a header line, then vignette, variant and "
                                     "question records (see probes/data/stigma-v1.jsonl).")


class RunLaunchForm(forms.Form):
    battery = forms.ModelChoiceField(queryset=ProbeBattery.objects.all())
    model = forms.ModelChoiceField(queryset=ModelConfig.objects.filter(is_active=True), label="Model under test")
    name = forms.CharField(max_length=200, required=False, help_text="Optional; defaults to battery and model.")
    samples = forms.IntegerField(min_value=1, max_value=MAX_SAMPLES, initial=1,
                                 help_text="Replies per prompt (vignette variant x question).")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**62)
    max_concurrent_calls = forms.IntegerField(min_value=1, max_value=256, initial=8,
                                              help_text="At most this many LLM calls of the run in flight.")
