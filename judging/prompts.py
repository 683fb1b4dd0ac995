"""The judge prompt, built from the rubric itself so any loaded rubric can be judged without code.

Axes computed by the platform (e.g. readability) are not asked of the judge; the case's
ground-truth diagnosis is given only when an axis needs it (diagnostic accuracy). The model under
test is never named: the judge, like the clinicians, is blinded to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

PROMPT_VERSION = "judge-v1"
TEMPLATE_DIR = Path(__file__).resolve().parent / "prompt_templates"
SPEAKERS = {"patient": "Patient", "sensemaker": "Assistant"}


@dataclass(frozen=True)
class JudgeAxis:
    """What the judge needs of one rubric axis."""

    key: str
    name: str
    kind: str  # "ordinal" or "binary"
    scale_min: float
    scale_max: float
    points: tuple  # ({"value", "label", "anchor"}, ...)
    help_text: str = ""
    shows_ground_truth: bool = False
    allows_fractions: bool = False

    @classmethod
    def from_axis(cls, axis) -> JudgeAxis:
        values = [point["value"] for point in axis.points or []]
        low = axis.scale_min if axis.scale_min is not None else min(values)
        high = axis.scale_max if axis.scale_max is not None else max(values)
        return cls(key=axis.key, name=axis.name, kind=axis.kind, scale_min=low, scale_max=high,
                   points=tuple(axis.points or ()), help_text=axis.help_text,
                   shows_ground_truth=axis.shows_ground_truth,
                   # An ordinal scale analysed as interval data admits a score between two anchors.
                   allows_fractions=axis.kind == "ordinal" and axis.agreement_level == "interval")


def judged_axes(rubric) -> list[JudgeAxis]:
    return [JudgeAxis.from_axis(axis) for axis in rubric.axes.order_by("order", "pk")
            # Nominal (categorical) axes are rated by clinicians only: the judge's reply format is numeric.
            if axis.kind not in ("computed", "nominal") and not axis.computed_by]


def _describe_axis(axis: JudgeAxis) -> str:
    scale = "a number" if axis.allows_fractions else "a whole number"
    if axis.kind == "binary":
        allowed = ", ".join(format(point["value"], "g") for point in axis.points)
        score_line = f"  Score: one of {allowed}."
    else:
        score_line = f"  Score: {scale} from {axis.scale_min:g} to {axis.scale_max:g}."
    lines = [f'- "{axis.key}" ({axis.name}): {axis.help_text}'.rstrip(": "), score_line]
    lines += [f"  {point['value']:g} = {point.get('label', '')}: {point.get('anchor', '')}".rstrip(": ")
              for point in axis.points]
    return "\n".join(lines)


@lru_cache(maxsize=8)
def _template(version: str) -> Template:
    return Template((TEMPLATE_DIR / f"{version}.txt").read_text())


def build_judge_prompt(*, rubric_name: str, instructions: str, axes: list[JudgeAxis], messages: list[dict],
                       ground_truth: str | None, version: str = PROMPT_VERSION) -> str:
    """`messages` are {"role": "patient"|"sensemaker", "text": ...} in conversation order."""
    if not axes:
        raise ValueError("The rubric has no axis a judge can score.")
    template = _template(version)
    needs_truth = any(axis.shows_ground_truth for axis in axes)
    return template.substitute(
        rubric_name=rubric_name,
        rubric_instructions=instructions.strip(),
        ground_truth=(f"The patient's actual (ground-truth) diagnosis, for the axes that judge diagnostic "
                      f"accuracy: {ground_truth}\n") if needs_truth and ground_truth else "",
        axes="\n".join(_describe_axis(axis) for axis in axes),
        messages="\n".join(f"[{number}] {SPEAKERS.get(m['role'], 'Patient')}: {m['text']}"
                           for number, m in enumerate(messages, start=1)),
        axis_keys=", ".join(f'"{axis.key}"' for axis in axes),
    )
