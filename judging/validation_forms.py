from django import forms

from rating.forms import CampaignSettingsForm

from .models import JudgeRun
from .validation import FINISHED


class JudgeRunChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        # Admins only: naming the judge here is fine (raters never see this form).
        return f"{obj.name} ({obj.get_status_display().lower()}, {obj.samples} sample{'s' if obj.samples != 1 else ''})"


class ValidationCampaignForm(CampaignSettingsForm):
    judge_run = JudgeRunChoiceField(queryset=JudgeRun.objects.none(), label="Judge run",
                                    help_text="A finished run; its scored conversations go into the campaign.")
    sample_index = forms.IntegerField(min_value=0, initial=0, label="Judge sample shown",
                                      help_text="Which of the run's repeated samples clinicians see (0 = the first).")
    open_now = forms.BooleanField(required=False, label="Open the campaign at once")

    field_order = ["judge_run", "sample_index", "name", "description", "raters", "overlap_k", "lease_minutes",
                   "open_now"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judge_run"].queryset = JudgeRun.objects.filter(status__in=FINISHED).select_related("rubric")
