"""Versioned prompt templates of the MedAgent pipeline.

Each prompt kind is one file `prompts/<version>/<kind>.txt` whose first line is the marker
`[medagent:<version>:<kind>]`. The marker stays in the rendered prompt: it tells the offline
simulator which kind of prompt it is answering, and lets a stored trace be traced back to its
template. Shared pieces (stage goals, persona traits, intents, goals...) are in `fragments.toml`.

Rendering uses `string.Template.substitute`, so a missing variable is an error, not a silent
blank, and braces in case text need no escaping.
"""
from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

from .types import GOALS, INTENTS, LITERACY_LEVELS, STAGE_NAMES, TRAITS

PROMPT_VERSION = "v1"
PROMPT_DIR = Path(__file__).resolve().parent / "prompts"

PROMPT_KINDS = (
    "case_extraction",
    "patient_first_message",
    "patient_fact_selection",
    "patient_reply",
    "patient_no_match_reply",
    "sensemaker_fact_extraction",
    "stage_decision",
    "sensemaker_candidates",
    "redundancy_check",
)

MARKER_RE = re.compile(r"^\[medagent:(?P<version>[A-Za-z0-9_.-]+):(?P<kind>[a-z_]+)\]$")


class PromptError(Exception):
    pass


@dataclass(frozen=True)
class PromptSet:
    version: str
    templates: dict[str, Template]
    fragments: dict[str, Any]
    digest: str  # sha256 over every file of the version, recorded with each conversation

    def render(self, kind: str, **values: Any) -> str:
        try:
            template = self.templates[kind]
        except KeyError:
            raise PromptError(f"prompt version {self.version} has no prompt kind {kind!r}") from None
        try:
            return template.substitute({k: str(v) for k, v in values.items()})
        except KeyError as exc:
            raise PromptError(f"prompt {self.version}:{kind} needs the value {exc.args[0]!r}") from None

    # --- fragments -------------------------------------------------------------------------
    def stage(self, number: int) -> dict[str, Any]:
        return self.fragments["stages"][str(number)]

    @property
    def apology(self) -> str:
        return self.stage(3)["apology"]

    def stage_rules(self, number: int) -> str:
        rules = self.stage(number).get("rules") or self.fragments["stage_rules"]["default"]
        return Template(rules).substitute(apology=self.apology)

    def persona_block(self, trait: str, literacy: str) -> str:
        # The first two lines are fixed-form so the simulator (and a reader of a trace) can
        # recover the persona from the prompt alone.
        return "\n".join([
            f"Dominant trait: high {trait}. {self.fragments['traits']['low']}",
            self.fragments["traits"][trait],
            f"Health literacy: {literacy}.",
            self.fragments["literacy"][literacy],
        ])

    def intent_statement(self, intent: str) -> str:
        return self.fragments["intents"][intent]["statement"]

    def goal_statement(self, goal: str) -> str:
        return self.fragments["goals"][goal]["statement"]

    def options_block(self, section: str) -> str:
        items = self.fragments[section]
        return "\n".join(f"{key}: {items[key]['label']}. {items[key]['definition']}" for key in items)


def parse_marker(text: str) -> tuple[str, str] | None:
    """(version, kind) from a rendered prompt's first line, or None when it is not ours."""
    first = text.lstrip().split("\n", 1)[0].strip()
    match = MARKER_RE.match(first)
    return (match["version"], match["kind"]) if match else None


def available_versions() -> list[str]:
    return sorted(p.name for p in PROMPT_DIR.iterdir() if p.is_dir() and (p / "fragments.toml").exists())


@lru_cache(maxsize=8)
def load_prompts(version: str = PROMPT_VERSION) -> PromptSet:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", version or ""):
        raise PromptError(f"invalid prompt version {version!r}")
    directory = PROMPT_DIR / version
    if not directory.is_dir():
        raise PromptError(f"unknown prompt version {version!r} (have: {', '.join(available_versions())})")
    digest = hashlib.sha256()
    templates: dict[str, Template] = {}
    for kind in PROMPT_KINDS:
        path = directory / f"{kind}.txt"
        if not path.exists():
            raise PromptError(f"prompt version {version} lacks {path.name}")
        text = path.read_text(encoding="utf-8")
        marker = parse_marker(text)
        if marker != (version, kind):
            raise PromptError(f"{path}: first line must be [medagent:{version}:{kind}]")
        templates[kind] = Template(text.rstrip("\n") + "\n")
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
    fragments_path = directory / "fragments.toml"
    raw = fragments_path.read_bytes()
    digest.update(b"fragments.toml\0" + raw)
    fragments = tomllib.loads(raw.decode("utf-8"))
    _check_fragments(version, fragments)
    return PromptSet(version=version, templates=templates, fragments=fragments, digest=digest.hexdigest())


def _check_fragments(version: str, fragments: dict[str, Any]) -> None:
    missing = []
    for number in STAGE_NAMES:
        stage = fragments.get("stages", {}).get(str(number))
        if not stage or not {"name", "goal", "examples"} <= set(stage):
            missing.append(f"stages.{number}")
        elif number < 6 and "move_on" not in stage:
            missing.append(f"stages.{number}.move_on")
    missing += [f"traits.{t}" for t in TRAITS if t not in fragments.get("traits", {})]
    missing += [f"literacy.{x}" for x in LITERACY_LEVELS if x not in fragments.get("literacy", {})]
    missing += [f"intents.{x}" for x in INTENTS if x not in fragments.get("intents", {})]
    missing += [f"goals.{x}" for x in GOALS if x not in fragments.get("goals", {})]
    for key in ("closed_world", "open_world"):
        if key not in fragments.get("patient_rules", {}):
            missing.append(f"patient_rules.{key}")
    if "apology" not in fragments.get("stages", {}).get("3", {}):
        missing.append("stages.3.apology")
    if missing:
        raise PromptError(f"prompt version {version}: fragments.toml lacks {', '.join(missing)}")


def numbered(items: list[str], empty: str = "(none)") -> str:
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1)) if items else empty
