"""The MedAgent pipeline (Chandra et al., arXiv 2505.20201, section 3 and the authors' code).

One conversation alternates a patient turn and a sensemaker turn until the sensemaker's Exit
message (stage 6) is produced.

Patient turn
  * Fact pool. The case facts plus ONE statement of the patient's motive: before stage 4 the
    intent statement ("intent facts"), from stage 4 on the goal statement ("goal facts"). The
    statements are the first-person `statement` texts of the intent/goal in fragments.toml, as
    in the authors' code, where the intent or goal description is added to the fact list.
    Vital-sign facts are not in the patient's pool (patients do not recite their vitals); the
    sensemaker knows them from the start, as measured values.
  * The first message uses at most 2 facts (checked by the parser) and states the intent.
  * Otherwise the patient model picks at most 3 facts (parser-checked, numbers must exist in
    the pool) or NO MATCH. With facts it answers in persona; before stage 4 the closed-world
    rules apply (anything not in the facts is false, no treatment proposals), from stage 4 the
    open-world rules (may answer creatively, agrees to next steps). With NO MATCH it answers
    "No / I'm not sure" to history questions and "Yes" to decision/emotion questions; an answer of
    the wrong polarity does not parse and is asked again (parsers.no_match_polarity_problem).

Sensemaker turn
  1. The helper extracts new facts from the patient message into the sensemaker's notes.
  2. Stage: from stage 3 the move to 4 is automatic; after 5 sensemaker messages in a stage the
     move is forced (no decision call is made); otherwise the model under test decides
     MOVE_NEXT / STAY with a 1-10 confidence (a confidence on the wrong side of the prompt's
     scale, e.g. MOVE_NEXT at 3, is counted; the DECISION stands).
  3. The model under test writes 3 candidates for the (new) stage; the helper labels each
     redundant or not against everything the sensemaker has said (skipped, all non-redundant,
     before the sensemaker has said anything); one non-redundant candidate is chosen with
     random.Random(seed), passing over candidates that ask more than one question or, in stage 3,
     any question (if every non-redundant one does, one is still chosen, and counted).
     If all 3 are redundant, "no new message" is recorded in the trace, the
     stage advances and candidates are written for the next stage, within the same turn.
  4. The conversation ends when the Exit message is sent. If even the Exit candidates are all
     redundant there is no Exit message: the authors' code kept such conversations, we fail
     them (ConversationFailed), since a conversation without its Exit stage is incomplete. A
     safety cap on iterations turns a runaway loop into ConversationFailed too.

Interjection (safety probes): with `interjection=Interjection(stage, text)` the conversation runs
as above until the first patient turn taken while the conversation is at `stage` or later (never the
opening message), where `text` is sent as the patient's message instead of a generated one; the
sensemaker answers it with its ordinary turn, and the conversation ends there (ended reason
"interjection"). The patient turn is marked in the trace (kind "interjection"). A conversation whose
Exit comes before that stage fails (ConversationFailed): the probe was never sent.

Every step is recorded in the trace, with the rule breaches counted per conversation
(trace["rule_violations"]); replies that do not parse are retried by the client and
then fail the conversation, so nothing malformed is ever returned as a result.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from string import Template
from typing import Any, NamedTuple

from . import parsers
from .grammar import GrammarError, load_grammars, render_grammar
from .llm import LLMClient
from .prompt_set import PROMPT_VERSION, PromptSet, load_prompts, numbered
from .simulator import is_simulated_model
from .types import (
    EXIT_STAGE,
    STAGE_NAMES,
    CaseInput,
    ConversationCancelled,
    ConversationFailed,
    ConversationResult,
    LLMCallFailed,
    MedAgentError,
    MessageRecord,
    ModelSpec,
    PersonaInput,
    Usage,
)

ROLES = ("patient", "sensemaker", "helper")
# Token estimate for a declared context window, without the model's tokenizer: the v1 prompts run at
# 3.7-4.2 characters per token with SmolLM2's tokenizer (measured with llama.cpp's /extras/tokenize);
# 3 leaves room for number-heavy notes, and the chat template adds a few dozen tokens.
CHARS_PER_TOKEN = 3.0
TEMPLATE_TOKENS = 40
MAX_TURNS_PER_STAGE = 5
CANDIDATES_PER_TURN = 3
NO_NEW_MESSAGE = "no new message"
VIOLATION_KINDS = (
    "no_match_polarity",  # a NO MATCH answer of the wrong polarity (the reply was asked again)
    "confidence_contradicts_decision",  # e.g. MOVE_NEXT with confidence 3 (the decision is kept)
    "more_than_one_question",  # candidates asking two or more questions (passed over)
    "question_in_providing_information",  # stage-3 candidates asking a question (passed over)
    "chosen_despite_rule_breach",  # every non-redundant candidate broke a rule, so one was used anyway
)


class Interjection(NamedTuple):
    """A fixed patient message sent at the first patient turn at `stage` (1-5) or later."""

    stage: int
    text: str


class CaseExtraction(NamedTuple):
    facts: list[str]
    vital_facts: list[str]
    intent: str
    goal: str


def _retry_note(prompts: PromptSet) -> Callable[[str], str]:
    template = Template(prompts.fragments["retry"]["format_note"])
    return lambda error: template.substitute(error=error)


def extract_case(
    case_text: str,
    helper: ModelSpec,
    client: LLMClient,
    *,
    prompt_version: str = PROMPT_VERSION,
    usage: Usage | None = None,
) -> CaseExtraction:
    """Split a case into facts and vital-sign facts and assign one intent and one goal.

    Raises ValueError for an empty case, LLMCallFailed / ConversationFailed when the helper
    cannot be reached or never answers in the required format.
    """
    text = (case_text or "").strip()
    if not text:
        raise ValueError("the case text is empty")
    prompts = load_prompts(prompt_version)
    prompt = prompts.render(
        "case_extraction",
        case_text=text,
        intent_options=prompts.options_block("intents"),
        goal_options=prompts.options_block("goals"),
    )
    try:
        grammar = render_grammar(prompts.version, "case_extraction") if helper.grammar_format else None
    except GrammarError as exc:
        raise ConversationFailed(f"case_extraction: no usable grammar for {helper.model}: {exc}") from None
    parsed = client.complete_parsed(
        helper, prompt, parsers.parse_case_extraction, kind="case_extraction", usage=usage,
        retry_note=_retry_note(prompts), grammar=grammar,
    ).value
    return CaseExtraction(parsed.facts, parsed.vital_facts, parsed.intent, parsed.goal)


# Candidate flags that break the method (at most one question; none while providing information).
# Such candidates are passed over when the random choice is made; "apology_no_diagnosis" is not a
# breach (the stage allows it) and is only recorded.
RULE_BREACHES = ("more_than_one_question", "question_in_providing_information")
# The stage-decision prompt's scale: 1-6 means stay, 7-10 means move on.
MOVE_ON_CONFIDENCE = 7


def _rule_flags(stage: int, text: str, apology: str) -> list[str]:
    """Method rules the model under test may break, per candidate (see RULE_BREACHES)."""
    flags = []
    questions = text.count("?")
    if stage == 3 and questions:
        flags.append("question_in_providing_information")
    elif questions > 1:
        flags.append("more_than_one_question")
    if stage == 3 and text.strip() == apology:
        flags.append("apology_no_diagnosis")
    return flags


def _numbered_after(items: list[str], left_out: int) -> str:
    """The list as numbered() writes it, minus its first `left_out` entries (numbers kept)."""
    if not left_out:
        return numbered(items)
    note = f"({left_out} earlier {'entry' if left_out == 1 else 'entries'} not shown)"
    return "\n".join([note, *(f"{i}. {item}" for i, item in enumerate(items[left_out:], left_out + 1))])


class _Conversation:
    def __init__(self, case, persona, models, seed, client, max_iterations, prompt_version, should_continue,
                 interjection: Interjection | None = None):
        self.interjection = interjection
        self.case = case
        self.persona = persona
        self.models = models
        self.seed = seed
        self.client = client
        self.max_iterations = max_iterations
        self.should_continue = should_continue
        self.prompts = load_prompts(prompt_version)
        self.rng = random.Random(seed)
        self.intent = persona.intent or case.intent
        self.goal = persona.goal or case.goal
        self.persona_text = self.prompts.persona_block(persona.trait, persona.literacy)
        self.retry_note = _retry_note(self.prompts)
        self.usage = Usage()
        self.usage_by_role = {role: Usage() for role in ROLES}
        self.messages: list[MessageRecord] = []
        self.turns: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        # The sensemaker's notes start with the measured vital signs.
        self.known_facts: list[str] = list(case.vital_facts)
        self.said: list[str] = []
        self.stage = 1
        self.turns_in_stage = 0
        self.pending: dict[str, Any] | None = None  # the turn in progress
        # How often the model broke the method's rules in this conversation (see rule_violations()).
        self.violations = dict.fromkeys(VIOLATION_KINDS, 0)

    # --- plumbing ---------------------------------------------------------------------------
    def call(self, role: str, kind: str, prompt: str, parser: Callable[[str], Any],
             fact_count: int | None = None) -> Any:
        """`fact_count`: length of the numbered fact list in the prompt (bounds a grammar's fact numbers)."""
        spec = self.models[role]
        try:
            grammar = render_grammar(self.prompts.version, kind, fact_count) if spec.grammar_format else None
        except GrammarError as exc:
            raise ConversationFailed(f"{kind}: no usable grammar for {spec.model}: {exc}") from None
        spent = Usage()  # every attempt costs tokens, including replies that did not parse
        try:
            result = self.client.complete_parsed(
                spec, prompt, parser, kind=kind, usage=spent, retry_note=self.retry_note, grammar=grammar
            )
        finally:
            self.usage.add(spent.as_dict())
            self.usage_by_role[role].add(spent.as_dict())
        if result.parse_errors:
            self.events.append({"turn": len(self.turns), "kind": "parse_retry", "prompt_kind": kind,
                                "role": role, "errors": list(result.parse_errors)})
            self.violations["no_match_polarity"] += sum(
                error.startswith(parsers.POLARITY_ERROR) for error in result.parse_errors)
        return result.value

    def render(self, role: str, kind: str, **values: Any) -> str:
        """Render a prompt; list values (known facts, previous messages) are numbered here.

        For a model that declares its context window (ModelSpec.context_tokens), the oldest entries of
        the longest list are left out, with a note saying how many, until the prompt and the reply fit:
        a long conversation then loses old context instead of failing on context_length_exceeded.
        The omission is recorded in the trace's events."""
        spec = self.models[role]
        lists = {key: value for key, value in values.items() if isinstance(value, list)}
        left_out = dict.fromkeys(lists, 0)
        while True:
            shown = {key: _numbered_after(items, left_out[key]) for key, items in lists.items()}
            prompt = self.prompts.render(kind, **{**values, **shown})
            budget = spec.context_tokens
            if budget is None or len(prompt) / CHARS_PER_TOKEN + TEMPLATE_TOKENS + (spec.max_tokens or 0) <= budget:
                break
            remaining = {k: sum(len(item) for item in v[left_out[k]:]) for k, v in lists.items()}
            longest = max(remaining, key=remaining.get, default=None)
            if longest is None or not remaining[longest]:
                raise ConversationFailed(
                    f"{kind}: the prompt does not fit {spec.model}'s context of {budget} tokens "
                    f"even without earlier notes and messages"
                )
            left_out[longest] += 1
        if any(left_out.values()):
            self.events.append({"turn": len(self.turns), "kind": "context_trimmed", "prompt_kind": kind, "role": role,
                                "left_out": {k: n for k, n in left_out.items() if n}})
        return prompt

    def check_continue(self) -> None:
        if self.should_continue is not None and not self.should_continue():
            raise ConversationCancelled(f"cancelled by the caller after {len(self.messages)} messages")

    def add_message(self, role: str, stage: int, text: str, trace: dict[str, Any]) -> MessageRecord:
        record = MessageRecord(index=len(self.messages), role=role, stage=stage, text=text, trace=trace)
        self.messages.append(record)
        return record

    # --- patient ----------------------------------------------------------------------------
    def patient_first_message(self) -> tuple[str, dict[str, Any]]:
        facts = self.case.facts
        prompt = self.prompts.render(
            "patient_first_message",
            facts=numbered(facts),
            intent=self.prompts.intent_statement(self.intent),
            persona=self.persona_text,
        )
        parsed = self.call("patient", "patient_first_message", prompt,
                           lambda text: parsers.parse_first_message(text, len(facts)), fact_count=len(facts))
        return parsed.message, {
            "kind": "first_message",
            "fact_pool": "intent",
            "selected_fact_numbers": parsed.fact_numbers,
            "selected_facts": [facts[n - 1] for n in parsed.fact_numbers],
            "no_match": False,
        }

    def patient_reply(self, question: str) -> tuple[str, dict[str, Any]]:
        stage = self.stage
        decision_phase = stage >= 4
        motive = self.prompts.goal_statement(self.goal) if decision_phase else \
            self.prompts.intent_statement(self.intent)
        pool = [*self.case.facts, motive]
        selection_prompt = self.prompts.render("patient_fact_selection", question=question, facts=numbered(pool))
        numbers = self.call("patient", "patient_fact_selection", selection_prompt,
                            lambda text: parsers.parse_fact_selection(text, len(pool)), fact_count=len(pool))
        trace: dict[str, Any] = {
            "kind": "reply" if numbers else "no_match_reply",
            "fact_pool": "goal" if decision_phase else "intent",
            "selected_fact_numbers": numbers,
            "selected_facts": [pool[n - 1] for n in numbers],
            "no_match": not numbers,
            "world": "open" if decision_phase else "closed",
        }
        common = {"stage_name": STAGE_NAMES[stage], "stage_number": stage, "question": question,
                  "persona": self.persona_text}
        if numbers:
            rules = self.prompts.fragments["patient_rules"]["open_world" if decision_phase else "closed_world"]
            prompt = self.prompts.render("patient_reply", rules=rules, facts=numbered(trace["selected_facts"]),
                                         **common)
            text = self.call("patient", "patient_reply", prompt, parsers.parse_patient_answer)
        else:
            prompt = self.prompts.render("patient_no_match_reply", **common)
            parsed = self.call("patient", "patient_no_match_reply", prompt, parsers.parse_no_match_reply)
            text = parsed.answer
            trace["no_match_category"] = parsed.category
        return text, trace

    # --- sensemaker -------------------------------------------------------------------------
    def extract_facts(self, patient_text: str) -> list[str]:
        prompt = self.render("helper", "sensemaker_fact_extraction", patient_message=patient_text,
                             known_facts=self.known_facts)
        new = self.call("helper", "sensemaker_fact_extraction", prompt, parsers.parse_new_facts)
        known = {" ".join(f.lower().split()) for f in self.known_facts}
        new = [f for f in new if " ".join(f.lower().split()) not in known]
        self.known_facts.extend(new)
        return new

    def decide_stage(self, patient_text: str) -> dict[str, Any]:
        stage = self.stage
        if stage == 3:
            return {"mode": "automatic", "from_stage": 3, "to_stage": 4, "decision": None, "confidence": None}
        if self.turns_in_stage >= MAX_TURNS_PER_STAGE:
            return {"mode": "forced", "from_stage": stage, "to_stage": stage + 1, "decision": None,
                    "confidence": None, "turns_in_stage": self.turns_in_stage}
        next_stage = self.prompts.stage(stage + 1)
        prompt = self.render(
            "sensemaker", "stage_decision",
            stage_number=stage,
            stage_name=STAGE_NAMES[stage],
            turns_in_stage=self.turns_in_stage,
            next_number=stage + 1,
            next_name=next_stage["name"],
            move_on=self.prompts.stage(stage)["move_on"],
            patient_message=patient_text,
            known_facts=self.known_facts,
            previous_messages=self.said,
        )
        parsed = self.call("sensemaker", "stage_decision", prompt, parsers.parse_stage_decision)
        # The DECISION line is what the model chose; a confidence on the other side of the prompt's
        # scale is counted against it, not used to overrule it.
        consistent = parsed.move_next == (parsed.confidence >= MOVE_ON_CONFIDENCE)
        if not consistent:
            self.violations["confidence_contradicts_decision"] += 1
        return {
            "mode": "model",
            "from_stage": stage,
            "to_stage": stage + 1 if parsed.move_next else stage,
            "decision": "MOVE_NEXT" if parsed.move_next else "STAY",
            "confidence": parsed.confidence,
            "confidence_consistent": consistent,
            "reasoning": parsed.reasoning,
            "turns_in_stage": self.turns_in_stage,
        }

    def candidates(self, stage: int, patient_text: str) -> dict[str, Any]:
        info = self.prompts.stage(stage)
        prompt = self.render(
            "sensemaker", "sensemaker_candidates",
            stage_number=stage,
            stage_name=STAGE_NAMES[stage],
            stage_goal=info["goal"],
            stage_examples="\n".join(f"- {e}" for e in info["examples"]),
            stage_rules=self.prompts.stage_rules(stage),
            patient_message=patient_text,
            known_facts=self.known_facts,
            previous_messages=self.said,
        )
        parsed = self.call("sensemaker", "sensemaker_candidates", prompt,
                           lambda text: parsers.parse_candidates(text, CANDIDATES_PER_TURN))
        if self.said:
            check = self.render("helper", "redundancy_check", candidates=numbered(parsed.messages),
                                previous_messages=self.said)
            redundant = self.call("helper", "redundancy_check", check,
                                  lambda text: parsers.parse_redundancy(text, CANDIDATES_PER_TURN))
            checked = True
        else:
            redundant, checked = [False] * CANDIDATES_PER_TURN, False
        flags = [_rule_flags(stage, m, self.prompts.apology) for m in parsed.messages]
        for candidate_flags in flags:
            for breach in RULE_BREACHES:
                self.violations[breach] += breach in candidate_flags
        return {
            "stage": stage,
            "candidates": parsed.messages,
            "reasoning": parsed.reasoning,
            "redundant": redundant,
            "redundancy_checked": checked,
            "rule_flags": flags,
        }

    def sensemaker_turn(self, patient_text: str) -> tuple[MessageRecord, dict[str, Any]]:
        extracted = self.extract_facts(patient_text)
        self.pending["sensemaker"] = {"extracted_facts": extracted}
        decision = self.decide_stage(patient_text)
        target = decision["to_stage"]
        rounds: list[dict[str, Any]] = []
        # Kept up to date as the turn goes, so a failure mid-turn still shows what happened.
        self.pending["sensemaker"].update({"stage_decision": decision, "candidate_rounds": rounds})
        record = None
        while target <= EXIT_STAGE:
            round_ = self.candidates(target, patient_text)
            rounds.append(round_)
            usable = [i for i, is_redundant in enumerate(round_["redundant"]) if not is_redundant]
            if usable:
                # Candidates that break the method's rules are passed over; if every usable one does,
                # one of them is still said (skipping the stage would lose more), and that is counted.
                compliant = [i for i in usable if not set(round_["rule_flags"][i]) & set(RULE_BREACHES)]
                round_["eligible"] = compliant or usable
                if not compliant:
                    self.violations["chosen_despite_rule_breach"] += 1
                chosen = self.rng.choice(round_["eligible"])
                round_["chosen_index"] = chosen
                round_["no_new_message"] = False
                text = round_["candidates"][chosen]
                if target != self.stage:
                    self.stage, self.turns_in_stage = target, 0
                self.turns_in_stage += 1
                self.said.append(text)
                record = self.add_message("sensemaker", target, text, {
                    "extracted_facts": extracted,
                    "stage_decision": decision,
                    "candidate_rounds": rounds,
                    "chosen_index": chosen,
                    "rule_flags": round_["rule_flags"][chosen],
                })
                break
            # All three redundant: nothing is said, and the conversation moves on a stage.
            round_["chosen_index"] = None
            round_["no_new_message"] = True
            self.events.append({"turn": len(self.turns), "kind": NO_NEW_MESSAGE, "stage": target})
            target += 1
        if record is None:
            raise ConversationFailed(
                "all Exit candidates were redundant, so the conversation has no Exit message "
                f"(turn {len(self.turns)}, {len(rounds)} candidate rounds without a usable message)"
            )
        self.pending["sensemaker"]["message_index"] = record.index
        return record, self.pending["sensemaker"]

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> ConversationResult:
        ended = None
        last_sensemaker = None
        for iteration in range(self.max_iterations):
            self.check_continue()
            self.pending = {"turn": iteration}
            stage_at_patient = self.stage
            interject = (self.interjection is not None and iteration > 0
                          and stage_at_patient >= self.interjection.stage)
            if interject:
                patient_text = self.interjection.text
                patient_trace = {"kind": "interjection", "requested_stage": self.interjection.stage,
                                 "selected_fact_numbers": [], "selected_facts": [], "no_match": False}
            elif iteration == 0:
                patient_text, patient_trace = self.patient_first_message()
            else:
                patient_text, patient_trace = self.patient_reply(last_sensemaker.text)
            patient_record = self.add_message("patient", stage_at_patient, patient_text, patient_trace)
            self.pending["patient"] = {"message_index": patient_record.index, "stage": stage_at_patient,
                                       **patient_trace}
            self.check_continue()
            record, _ = self.sensemaker_turn(patient_text)
            self.turns.append(self.pending)
            self.pending = None
            last_sensemaker = record
            if interject:
                ended = {"reason": "interjection", "patient_message_index": patient_record.index,
                         "stage": stage_at_patient}
                break
            if record.stage == EXIT_STAGE:
                if self.interjection is not None:
                    raise ConversationFailed(
                        f"the conversation reached its Exit message before stage {self.interjection.stage}, "
                        "so the interjection was never sent")
                ended = {"reason": "exit_message"}
                break
        if ended is None:
            raise ConversationFailed(
                f"safety cap reached: no Exit message after {self.max_iterations} iterations "
                f"(stage {self.stage}, {len(self.messages)} messages)"
            )
        ended["iterations"] = len(self.turns)
        return ConversationResult(
            messages=self.messages,
            trace=self.trace(ended),
            usage=self.usage.as_dict(),
            stage_counts=self.stage_counts(),
            prompt_version=self.prompts.version,
            seed=self.seed,
        )

    def grammar_provenance(self) -> dict[str, Any] | None:
        """Which roles had their replies grammar-constrained, and with which grammar files."""
        roles = [role for role, spec in self.models.items() if spec.grammar_format]
        if not roles:
            return None
        try:
            digest = load_grammars(self.prompts.version).digest
        except GrammarError:  # already reported by the call that needed it; the trace must still build
            digest = None
        return {"format": "gbnf", "roles": roles, "digest": digest}

    def stage_counts(self) -> dict[str, dict[str, int]]:
        counts = {str(s): {"patient": 0, "sensemaker": 0} for s in STAGE_NAMES}
        for message in self.messages:
            counts[str(message.stage)][message.role] += 1
        return counts

    def trace(self, ended: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "engine": "medagent",
            "prompt_version": self.prompts.version,
            "prompt_digest": self.prompts.digest,
            "seed": self.seed,
            "max_iterations": self.max_iterations,
            "simulated": any(is_simulated_model(spec.model) for spec in self.models.values()),
            "models": {role: spec.to_dict() for role, spec in self.models.items()},
            "grammar": self.grammar_provenance(),
            "case": {
                "case_id": self.case.case_id,
                "facts": list(self.case.facts),
                "vital_facts": list(self.case.vital_facts),
                "intent": self.case.intent,
                "goal": self.case.goal,
                "condition": self.case.condition,
            },
            "persona": {"trait": self.persona.trait, "literacy": self.persona.literacy,
                        "intent": self.intent, "goal": self.goal},
            "patient_motive": {"intent_statement": self.prompts.intent_statement(self.intent),
                               "goal_statement": self.prompts.goal_statement(self.goal)},
            "interjection": None if self.interjection is None else {"stage": self.interjection.stage},
            "turns": self.turns,
            "unfinished_turn": self.pending,
            "events": self.events,
            "rule_violations": dict(self.violations),
            "sensemaker_known_facts": list(self.known_facts),
            "usage_by_role": {role: u.as_dict() for role, u in self.usage_by_role.items()},
            "ended": ended,
        }


def run_conversation(
    case: CaseInput,
    persona: PersonaInput,
    models: dict[str, ModelSpec],
    seed: int,
    client: LLMClient,
    max_iterations: int = 60,
    prompt_version: str = PROMPT_VERSION,
    should_continue: Callable[[], bool] | None = None,
    interjection: Interjection | None = None,
) -> ConversationResult:
    """Generate one conversation (or, with `interjection`, the conversation up to the sensemaker's reply
    to the interjected patient message). Raises ConversationFailed (any failure, provider faults
    included, with `usage` and a partial `trace` attached) or ConversationCancelled."""
    missing = [role for role in ROLES if not isinstance(models.get(role), ModelSpec)]
    if missing:
        raise ValueError(f"models needs a ModelSpec for {', '.join(missing)}")
    if not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    if max_iterations < 1:
        raise ValueError("max_iterations must be at least 1")
    if interjection is not None and (not 1 <= interjection.stage < EXIT_STAGE or not interjection.text.strip()):
        raise ValueError(f"an interjection needs a stage from 1 to {EXIT_STAGE - 1} and a non-empty text")
    conversation = _Conversation(case, persona, {r: models[r] for r in ROLES}, seed, client, max_iterations,
                                 prompt_version, should_continue, interjection)
    try:
        return conversation.run()
    except MedAgentError as exc:
        usage, trace = conversation.usage.as_dict(), conversation.trace(None)
        if isinstance(exc, LLMCallFailed):
            raise ConversationFailed(f"provider call failed: {exc.reason}", usage=usage, trace=trace) from exc
        exc.usage, exc.trace = usage, trace
        raise
