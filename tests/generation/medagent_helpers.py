"""Helpers shared by the MedAgent engine tests."""
import re
import threading

from generation.medagent import CaseInput, LLMClient, ModelSpec, extract_case
from generation.medagent.prompt_set import parse_marker
from generation.medagent.simulator import simulate_reply


class RecordingClient(LLMClient):
    """A real LLMClient (real litellm.completion underneath) that also notes every call it makes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []
        self._lock = threading.Lock()

    def complete(self, spec, messages, *, kind=""):
        with self._lock:
            self.calls.append({"model": spec.model, "kind": kind, "prompt": messages[-1]["content"]})
        return super().complete(spec, messages, kind=kind)

    def kinds(self):
        return [c["kind"] for c in self.calls]


def make_case(name, text, helper=None, client=None):
    helper = helper or ModelSpec("simulator/helper")
    extraction = extract_case(text, helper, client or LLMClient())
    return CaseInput(name, text, "ground truth not used here", extraction.facts, extraction.vital_facts,
                     extraction.intent, extraction.goal)


def prompt_kind(messages):
    for message in messages:
        marker = parse_marker(str(message.get("content") or ""))
        if marker:
            return marker[1]
    return None


def scripted(rules):
    """A fake-server responder: rules maps (model name, prompt kind) -> reply text or callable."""

    def respond(messages, model):
        kind = prompt_kind(messages)
        rule = rules.get((model, kind))
        if rule is None:
            return None
        return rule(messages, model) if callable(rule) else rule

    return respond


def simulated_but(transform):
    """Reply as the simulator would, then transform the text (for scripted variations)."""
    return lambda messages, model: transform(simulate_reply(messages, model))


STAGE_RE = re.compile(r"\(stage (\d) of 6\)")
