from django import forms

from generation.models import CaseStudy, Literacy, ModelConfig, Stage, Trait

from .models import Placement, ProbeBattery
from .services import MAX_SAMPLES, RunRequest

# Stage 6 is the Exit: nothing is said after it, so a probe can be placed at stages 1-5.
PROBE_STAGES = [(stage.value, f"{stage.value}. {stage.label}") for stage in Stage if stage.value < Stage.EXIT]


def _active_models():
    return ModelConfig.objects.filter(is_active=True)


class BatteryImportForm(forms.Form):
    file = forms.FileField(help_text="A battery file in JSON lines: a header line, then vignette, variant and "
                                     "question records (see probes/data/stigma-v1.jsonl).")


class RunLaunchForm(forms.Form):
    battery = forms.ModelChoiceField(queryset=ProbeBattery.objects.all())
    model = forms.ModelChoiceField(queryset=_active_models(), label="Model under test")
    name = forms.CharField(max_length=200, required=False, help_text="Optional; defaults to battery and model.")
    samples = forms.IntegerField(min_value=1, max_value=MAX_SAMPLES, initial=1,
                                 help_text="Replies per prompt (vignette variant x question).")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**62)
    max_concurrent_calls = forms.IntegerField(min_value=1, max_value=256, initial=8,
                                              help_text="At most this many LLM calls of the run in flight.")
    placement = forms.ChoiceField(
        choices=Placement.choices, initial=Placement.STANDALONE, widget=forms.RadioSelect, required=False,
        help_text="Interjection probes only: the probe alone, or as the patient's turn in a MedAgent conversation "
                  "in which the model under test is the sensemaker.")
    stage = forms.TypedChoiceField(choices=[("", "---------"), *PROBE_STAGES], coerce=int, empty_value=None,
                                   required=False, label="Stage of the conversation",
                                   help_text="The probe is the patient's first turn at this stage or later.")
    case = forms.ModelChoiceField(queryset=CaseStudy.objects.exclude(facts=[]).order_by("external_id"),
                                  required=False, label="Case study",
                                  help_text="The simulated patient's case (facts, intent and goal ready).")
    trait = forms.ChoiceField(choices=Trait.choices, initial=Trait.NEUROTICISM, required=False,
                              label="Patient's dominant trait")
    literacy = forms.ChoiceField(choices=Literacy.choices, initial=Literacy.BASIC, required=False,
                                 label="Patient's health literacy")
    patient_model = forms.ModelChoiceField(queryset=_active_models(), required=False, label="Patient model")
    helper_model = forms.ModelChoiceField(queryset=_active_models(), required=False, label="Helper model",
                                          help_text="Extracts facts and checks redundancy for the sensemaker.")
    judge_model = forms.ModelChoiceField(
        queryset=_active_models(), required=False, label="LLM judge (optional)",
        help_text="Interjection probes only: this model also answers each reply's verification question "
                  "(YES or NO, strictly), beside the clinicians.")

    def clean(self):
        data = super().clean()
        # Left out (an older form, a script): a stand-alone exchange, and the default persona cell.
        data["placement"] = data.get("placement") or Placement.STANDALONE
        data["trait"] = data.get("trait") or Trait.NEUROTICISM
        data["literacy"] = data.get("literacy") or Literacy.BASIC
        if data["placement"] == Placement.MEDAGENT:
            for field in ("stage", "case", "patient_model", "helper_model"):
                if not data.get(field) and field not in self.errors:
                    self.add_error(field, "Required when the probe is placed inside a MedAgent conversation.")
        return data

    def run_request(self) -> RunRequest:
        """The launch request the page and the API hand to probes.services.launch_run (after is_valid)."""
        data = self.cleaned_data
        medagent = data["placement"] == Placement.MEDAGENT
        return RunRequest(
            battery=data["battery"], model=data["model"], name=data["name"], samples=data["samples"],
            seed=data["seed"], max_concurrent_calls=data["max_concurrent_calls"], placement=data["placement"],
            stage=data["stage"] if medagent else None, case=data["case"] if medagent else None,
            trait=data["trait"], literacy=data["literacy"],
            patient_model=data["patient_model"] if medagent else None,
            helper_model=data["helper_model"] if medagent else None, judge_model=data["judge_model"])


class JudgeAddForm(forms.Form):
    judge_model = forms.ModelChoiceField(queryset=_active_models(), label="Judge model")


class CampaignJudgeForm(forms.Form):
    """The verification campaign's optional LLM judge: it answers the same questions as the raters."""

    judge_model = forms.ModelChoiceField(
        queryset=_active_models(), required=False, label="Judge model",
        help_text="Also have this model answer every exchange's verification question; the report compares its "
                  "answers with the clinicians'. Raters never see it.")
