"""Grammar-constrained decoding (generation/medagent/grammar.py) and the context budget for small
models, without a model server.

What is checked here:
* every prompt kind has a grammar file, and every file is valid GBNF by llama.cpp's rules (an invalid
  grammar kills llama.cpp's server process rather than being refused, so this matters);
* the grammars and the strict parsers agree both ways: every reply the simulator writes for a kind is
  in its grammar's language, and random strings drawn FROM each grammar all pass the strict parser, so a
  grammar can never force a model into a reply the pipeline would then reject;
* the client puts `grammar` in the HTTP body (through LiteLLM's real openai/ path to the loopback
  server) only for models that opt in, with the grammar of the right kind, and never forwards the
  opt-in key itself.

* for a model that declares its context window, the engine leaves the oldest notes and messages out
  of a prompt so that prompt and reply fit, and says so in the prompt and the trace.

The grammars are matched by compiling them to Python regular expressions (they are regular: no rule
refers to itself), and sampled by walking their syntax tree.
"""
import functools
import random
import re

import pytest

from generation.medagent import LLMClient, ModelSpec, PersonaInput, parsers, run_conversation
from generation.medagent.grammar import (
    GrammarError,
    fact_number_alternatives,
    grammar_dir,
    load_grammars,
    parse_gbnf,
    render_grammar,
)
from generation.medagent.prompt_set import PROMPT_KINDS, PROMPT_VERSION
from tests.generation.medagent_cases import ALL
from tests.generation.medagent_helpers import make_case, prompt_kind

GRAMMAR = {"medagent_grammar": "gbnf"}
FACT_KINDS = ("patient_first_message", "patient_fact_selection")


# --- a GBNF -> regex compiler and a sampler, for the grammars' syntax trees ---------------------------
def _cls_regex(node) -> str:
    _, negated, ranges = node
    body = "".join(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


def to_regex(rules, node=None, active=()) -> str:
    node = rules["root"] if node is None else node
    kind = node[0]
    if kind == "lit":
        return re.escape(node[1])
    if kind == "cls":
        return _cls_regex(node)
    if kind == "any":
        return r"[\s\S]"
    if kind == "ref":
        assert node[1] not in active, f"rule {node[1]} is recursive; these tests expect regular grammars"
        return f"(?:{to_regex(rules, rules[node[1]], (*active, node[1]))})"
    if kind == "seq":
        return "".join(to_regex(rules, child, active) for child in node[1])
    if kind == "alt":
        return "(?:" + "|".join(to_regex(rules, child, active) for child in node[1]) + ")"
    _, inner, low, high = node
    return f"(?:{to_regex(rules, inner, active)}){{{low},{'' if high is None else high}}}"


def compiled(kind: str, fact_count: int | None = None) -> re.Pattern:
    text = render_grammar(PROMPT_VERSION, kind, fact_count)
    return re.compile(to_regex(parse_gbnf(text, kind)))


# Characters a sample may contain where a class allows them: ASCII, tab, and a few typographic ones.
POOL = [chr(c) for c in range(0x20, 0x7F)] + ["\t", "é", "\u2019", "\u201c", "\u201d", "\u2014", "\n", "\r"]


@functools.cache
def _class_members(negated: bool, ranges: tuple) -> list[str]:
    inside = [c for c in POOL if any(lo <= c <= hi for lo, hi in ranges)]
    return [c for c in POOL if c not in inside] if negated else inside


def sample(rules, rng: random.Random, node=None) -> str:
    node = rules["root"] if node is None else node
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "cls":
        return rng.choice(_class_members(node[1], tuple(node[2])))
    if kind == "any":
        return rng.choice(POOL)
    if kind == "ref":
        return sample(rules, rng, rules[node[1]])
    if kind == "seq":
        return "".join(sample(rules, rng, child) for child in node[1])
    if kind == "alt":
        return sample(rules, rng, rng.choice(node[1]))
    _, inner, low, high = node
    high = low + 8 if high is None else high
    count = rng.choice([low, high, rng.randint(low, high)])  # the bounds are where formats break
    return "".join(sample(rules, rng, inner) for _ in range(count))


def strict_parser(kind: str, fact_count: int | None):
    return {
        "case_extraction": parsers.parse_case_extraction,
        "patient_first_message": lambda text: parsers.parse_first_message(text, fact_count),
        "patient_fact_selection": lambda text: parsers.parse_fact_selection(text, fact_count),
        "patient_reply": parsers.parse_patient_answer,
        "patient_no_match_reply": parsers.parse_no_match_reply,
        "sensemaker_fact_extraction": parsers.parse_new_facts,
        "stage_decision": parsers.parse_stage_decision,
        "sensemaker_candidates": parsers.parse_candidates,
        "redundancy_check": parsers.parse_redundancy,
    }[kind]


def fact_count_in(prompt: str) -> int:
    block = prompt.split("\n<facts>\n", 1)[1].split("\n</facts>", 1)[0]  # the block, not the rules' mention
    return len(re.findall(r"^\d+\. ", block, re.MULTILINE))


# --- the files --------------------------------------------------------------------------------------
def test_every_prompt_kind_has_a_valid_grammar_file():
    files = sorted(p.stem for p in grammar_dir(PROMPT_VERSION).glob("*.gbnf"))
    assert files == sorted(PROMPT_KINDS)
    grammars = load_grammars(PROMPT_VERSION)
    assert set(grammars.templates) == set(PROMPT_KINDS) and len(grammars.digest) == 64
    for kind in PROMPT_KINDS:
        text = render_grammar(PROMPT_VERSION, kind, 4)
        rules = parse_gbnf(text, kind)
        assert "root" in rules
        # llama.cpp rule names are letters, digits and '-' only (an '_' would be a syntax error there).
        assert all(re.fullmatch(r"[A-Za-z0-9-]+", name) for name in rules), kind
        assert "$" not in text, f"{kind}: unrendered template variable"


@pytest.mark.parametrize("text, message", [
    ("root ::= foo", "undefined rule foo"),
    ('item ::= "a"', "no root rule"),
    ('root ::= root "a" | "b"', "left-recursive"),
    ('root ::= "abc', "unterminated string"),
    ('root ::= [a-z', "unterminated character class"),
    ('root ::= "\\q"', "unknown escape"),
    ('root ::= "a"{3,1}', "max < min"),
    ('root ::= "a"\nroot ::= "b"', "defined twice"),
    ('root ::= my_rule\nmy_rule ::= "a"', "unexpected '_rule"),  # '_' is not a name character
    ('root = "a"', "expected '::='"),
])
def test_invalid_gbnf_is_refused_with_a_reason(text, message):
    with pytest.raises(GrammarError, match=re.escape(message)):
        parse_gbnf(text, "test.gbnf")


def test_gbnf_reader_accepts_the_syntax_llama_cpp_accepts():
    rules = parse_gbnf(
        '# comment\nroot ::= ( "a" | [^\\n\\x41-\\u0042] )+ item? "z"{2} . # tail\n'
        "item ::=\n  \"b\"* |\n  [0-9]{1,} ( \"c\"\n   | \"d\" )\n",
        "ok.gbnf",
    )
    regex = re.compile(to_regex(rules))
    assert regex.fullmatch("aaczzq") and regex.fullmatch("a12dzzx") and not regex.fullmatch("Azzq")
    # As in llama.cpp, a rule ends at a newline outside parentheses: '|' may not open the next line.
    with pytest.raises(GrammarError, match="expected a rule name"):
        parse_gbnf('root ::= "a"\n  | "b"\n', "split.gbnf")


def test_fact_numbers_are_bounded_by_the_fact_list():
    regex = compiled("patient_fact_selection", 4)
    assert regex.fullmatch("REASONING: Fits.\nFACTS: 1, 4")
    assert regex.fullmatch("REASONING: Nothing fits.\nFACTS: NO MATCH")
    assert not regex.fullmatch("REASONING: Fits.\nFACTS: 5")
    assert not regex.fullmatch("REASONING: Fits.\nFACTS: 1, 2, 3, 4")  # at most three
    first = compiled("patient_first_message", 12)
    assert first.fullmatch("REASONING: Why.\nFACTS USED: 12, 3\nMESSAGE: I need some help.")
    assert not first.fullmatch("REASONING: Why.\nFACTS USED: 13\nMESSAGE: I need some help.")
    assert not first.fullmatch("REASONING: Why.\nFACTS USED: 1, 2, 3\nMESSAGE: I need some help.")
    with pytest.raises(GrammarError):
        fact_number_alternatives(0)


def test_the_grammars_exclude_what_the_parsers_refuse():
    decision = compiled("stage_decision")
    assert decision.fullmatch("REASONING: The patient is open.\nCONFIDENCE: 8\nDECISION: MOVE_NEXT\n")
    for bad in ("REASONING: x\nCONFIDENCE: 11\nDECISION: STAY", "REASONING: x\nCONFIDENCE: 0\nDECISION: STAY",
                "REASONING: x\nCONFIDENCE: 3\nDECISION: MAYBE", "CONFIDENCE: 3\nDECISION: STAY",
                "REASONING: x\nCONFIDENCE: 3\nDECISION: STAY\nmore text"):
        assert not decision.fullmatch(bad), bad
    candidates = compiled("sensemaker_candidates")
    three = "REASONING: Be kind.\nMESSAGES:\n# How are you?\n# What brings you here?\n# Tell me more, please."
    assert candidates.fullmatch(three)
    assert not candidates.fullmatch(three + "\n# A fourth message.")
    assert not candidates.fullmatch(three.replace("# How are you?", "How are you?"))
    assert not candidates.fullmatch("REASONING: x\nMESSAGES:\n# <candidate message 1>\n# Hi there\n# Hi there")
    redundancy = compiled("redundancy_check")
    assert redundancy.fullmatch("1: REDUNDANT\n2: NOT_REDUNDANT\n3: REDUNDANT")
    assert not redundancy.fullmatch("1: REDUNDANT\n2: NOT_REDUNDANT")
    no_match = compiled("patient_no_match_reply")
    assert no_match.fullmatch("REASONING: History.\nCATEGORY: HISTORY\nANSWER: No. Never.")
    assert no_match.fullmatch("REASONING: Next steps.\nCATEGORY: DECISION\nANSWER: Yes! Let's try it.")
    assert not no_match.fullmatch("REASONING: History.\nCATEGORY: PAST\nANSWER: No. Never.")
    assert not no_match.fullmatch("REASONING: History.\nCATEGORY: HISTORY\nANSWER: ...")
    # The method's polarity: a history question is not answered "Yes", a decision not "No".
    assert not no_match.fullmatch("REASONING: History.\nCATEGORY: HISTORY\nANSWER: Yes. My mother had it.")
    assert not no_match.fullmatch("REASONING: Feelings.\nCATEGORY: EMOTION\nANSWER: No. I feel fine.")
    extraction = compiled("case_extraction")
    assert not extraction.fullmatch(
        "RATIONALE: x\nVITAL FACTS:\n- NONE\nFACTS:\n- I sleep badly.\nINTENT: cure\nGOAL: comfort")


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_every_string_a_grammar_allows_passes_the_strict_parser(kind):
    rng = random.Random(f"grammar-{kind}")
    for fact_count in ((1, 2, 3, 7, 15) if kind in FACT_KINDS else (None,)):
        rules = parse_gbnf(render_grammar(PROMPT_VERSION, kind, fact_count), kind)
        regex = re.compile(to_regex(rules))
        parse = strict_parser(kind, fact_count)
        for _ in range(150):
            text = sample(rules, rng)
            assert regex.fullmatch(text), text  # the sampler and the compiler agree
            try:
                parse(text)
            except parsers.ParseError as exc:
                pytest.fail(f"{kind}: the grammar allows a reply the parser refuses ({exc}):\n{text}")


# --- the simulator's replies are in the grammars' languages; the wire carries the grammar ------------
class GrammarRecorder(LLMClient):
    """A real client that also notes the grammar each call was given and the reply it got."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def complete(self, spec, messages, *, kind="", grammar=None):
        completion = super().complete(spec, messages, kind=kind, grammar=grammar)
        self.calls.append({"kind": kind, "grammar": grammar, "prompt": messages[-1]["content"],
                           "text": completion.text, "model": spec.model})
        return completion


def _simulated_calls():
    """Every prompt kind answered by the simulator, across cases, personas and seeds."""
    client = GrammarRecorder()
    helper = ModelSpec("simulator/helper", extra_params=GRAMMAR)
    models = {"patient": ModelSpec("simulator/patient", extra_params=GRAMMAR),
              "sensemaker": ModelSpec("simulator/under-test", extra_params=GRAMMAR), "helper": helper}
    personas = [PersonaInput("neuroticism", "advanced"), PersonaInput("extraversion", "basic"),
                PersonaInput("openness", "functional")]
    for seed, (name, text) in enumerate(ALL.items()):
        case = make_case(name, text, helper=helper, client=client)
        run_conversation(case, personas[seed % len(personas)], models, seed, client)
    return client.calls


def test_simulator_replies_are_accepted_by_the_grammar_of_their_kind():
    calls = _simulated_calls()
    assert {c["kind"] for c in calls} == set(PROMPT_KINDS)
    for call in calls:
        kind = call["kind"]
        fact_count = fact_count_in(call["prompt"]) if kind in FACT_KINDS else None
        # The engine rendered the grammar for this very prompt (fact numbers bounded by its list).
        assert call["grammar"] == render_grammar(PROMPT_VERSION, kind, fact_count)
        regex = re.compile(to_regex(parse_gbnf(call["grammar"], kind)))
        assert regex.fullmatch(call["text"]), f"{kind}: the grammar refuses a well-formed reply:\n{call['text']}"


def test_a_model_that_opts_in_gets_the_grammar_in_the_http_body(fake_llm):
    """Through LiteLLM's real openai/ path: `grammar` is a top-level field of the JSON body."""
    client = GrammarRecorder(timeout=10)
    local = ModelSpec("openai/local-model", api_base=fake_llm.base_url, max_tokens=300, extra_params=GRAMMAR)
    plain = ModelSpec("openai/other-model", api_base=fake_llm.base_url, extra_params={"top_p": 0.9})
    case = make_case("panic", ALL["panic"], helper=local, client=client)
    models = {"patient": local, "sensemaker": local, "helper": plain}
    result = run_conversation(case, PersonaInput("agreeableness", "basic"), models, 3, client)
    assert result.messages[-1].stage == 6
    assert result.trace["grammar"]["roles"] == ["patient", "sensemaker"]
    assert result.trace["grammar"]["digest"] == load_grammars(PROMPT_VERSION).digest
    assert result.trace["models"]["sensemaker"]["extra_params"] == GRAMMAR  # recorded as provenance
    assert len(fake_llm.requests) == len(client.calls) > 10
    for request, call in zip(fake_llm.requests, client.calls, strict=True):
        body = request["body"]
        kind = prompt_kind(body["messages"])
        assert kind == call["kind"]
        assert "medagent_grammar" not in body  # consumed by the client, never forwarded
        if body["model"] == "local-model":
            fact_count = fact_count_in(call["prompt"]) if kind in FACT_KINDS else None
            assert body["grammar"] == render_grammar(PROMPT_VERSION, kind, fact_count)
            assert body["max_tokens"] == 300
        else:
            assert "grammar" not in body and body["top_p"] == 0.9


def test_a_grammar_reaches_the_body_only_for_opted_in_models(fake_llm):
    client = LLMClient(timeout=10)
    messages = [{"role": "user", "content": "[medagent:v1:redundancy_check]\nLabel them."}]
    grammar = render_grammar(PROMPT_VERSION, "redundancy_check")
    client.complete(ModelSpec("openai/plain", api_base=fake_llm.base_url), messages, grammar=grammar)
    client.complete(ModelSpec("openai/local", api_base=fake_llm.base_url, extra_params=GRAMMAR), messages)
    client.complete(ModelSpec("openai/local", api_base=fake_llm.base_url,
                              extra_params={**GRAMMAR, "extra_body": {"mirostat_mode": 0}}), messages, grammar=grammar)
    bodies = [r["body"] for r in fake_llm.requests]
    assert "grammar" not in bodies[0] and "grammar" not in bodies[1]
    assert bodies[2]["grammar"] == grammar and bodies[2]["mirostat_mode"] == 0
    assert not any("medagent_grammar" in body for body in bodies)


def test_model_spec_checks_the_grammar_option():
    assert ModelSpec("openai/x", extra_params=GRAMMAR).grammar_format == "gbnf"
    assert ModelSpec("openai/x").grammar_format is None
    with pytest.raises(ValueError, match="medagent_grammar must be one of gbnf"):
        ModelSpec("openai/x", extra_params={"medagent_grammar": "json"})
    with pytest.raises(ValueError, match="extra_body must be a JSON object"):
        ModelSpec("openai/x", extra_params={"extra_body": "grammar"})
    with pytest.raises(ValueError, match="engine sets it per call"):
        ModelSpec("openai/x", extra_params={**GRAMMAR, "extra_body": {"grammar": 'root ::= "a"'}})


def test_a_broken_grammar_fails_the_conversation_with_a_reason(monkeypatch, sim_models):
    from generation.medagent import ConversationFailed, engine

    def broken(version, kind, fact_count=None):
        raise GrammarError(f"{version}/grammars/{kind}.gbnf, line 1: expected '::='")

    monkeypatch.setattr(engine, "render_grammar", broken)
    models = {**sim_models, "patient": ModelSpec("simulator/patient", extra_params=GRAMMAR)}
    case = make_case("panic", ALL["panic"])
    with pytest.raises(ConversationFailed, match="patient_first_message: no usable grammar for simulator/patient"):
        run_conversation(case, PersonaInput("agreeableness", "basic"), models, 1, LLMClient())


# --- context budget ---------------------------------------------------------------------------------
class PromptRecorder(LLMClient):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prompts = []

    def complete(self, spec, messages, *, kind="", grammar=None):
        self.prompts.append((spec.model, kind, messages[-1]["content"]))
        return super().complete(spec, messages, kind=kind, grammar=grammar)


def test_a_declared_context_window_leaves_old_entries_out_instead_of_overflowing(sim_models):
    from generation.medagent import engine

    budget, reply = 1100, 200
    small = ModelSpec("simulator/small-context", max_tokens=reply, extra_params={"medagent_context_tokens": budget})
    models = {**sim_models, "sensemaker": small, "helper": ModelSpec("simulator/helper-small", max_tokens=reply,
                                                                    extra_params={"medagent_context_tokens": budget})}
    client = PromptRecorder()
    case = make_case("alcohol", ALL["alcohol"])
    result = run_conversation(case, PersonaInput("extraversion", "advanced"), models, 5, client)
    trimmed = [e for e in result.trace["events"] if e["kind"] == "context_trimmed"]
    assert trimmed and {e["role"] for e in trimmed} <= {"sensemaker", "helper"}
    for model, kind, prompt in client.prompts:
        if model in (small.model, models["helper"].model):
            assert len(prompt) / engine.CHARS_PER_TOKEN + engine.TEMPLATE_TOKENS + reply <= budget, kind
    noted = [p for _, _, p in client.prompts if re.search(r"^\(\d+ earlier entr(y|ies) not shown\)$", p, re.M)]
    assert len(noted) >= len(trimmed)
    # Numbers are kept: the last previous message keeps its number even when earlier ones are left out.
    last = next(p for m, k, p in reversed(client.prompts) if k == "sensemaker_candidates")
    said = [m.text for m in result.messages if m.role == "sensemaker"][:-1]
    assert f"{len(said)}. {said[-1]}" in last
    # The same conversation without the declared window shows everything.
    plain = run_conversation(case, PersonaInput("extraversion", "advanced"), sim_models, 5, PromptRecorder())
    assert not [e for e in plain.trace["events"] if e["kind"] == "context_trimmed"]


def test_a_context_too_small_for_the_prompt_fails_with_a_reason(sim_models):
    from generation.medagent import ConversationFailed

    tiny = ModelSpec("simulator/tiny", max_tokens=200, extra_params={"medagent_context_tokens": 512})
    case = make_case("panic", ALL["panic"])
    with pytest.raises(ConversationFailed, match="does not fit simulator/tiny's context of 512 tokens"):
        run_conversation(case, PersonaInput("agreeableness", "basic"), {**sim_models, "helper": tiny}, 1, LLMClient())


def test_model_spec_checks_the_context_option():
    assert ModelSpec("openai/x", max_tokens=600, extra_params={"medagent_context_tokens": 4096}).context_tokens == 4096
    for bad in (100, "4096", True, 4.5):
        with pytest.raises(ValueError, match="medagent_context_tokens must be a whole number"):
            ModelSpec("openai/x", extra_params={"medagent_context_tokens": bad})
    with pytest.raises(ValueError, match="no room is left for the prompt"):
        ModelSpec("openai/x", max_tokens=3000, extra_params={"medagent_context_tokens": 4096})


def test_the_context_option_is_never_sent(fake_llm):
    spec = ModelSpec("openai/local", api_base=fake_llm.base_url, max_tokens=100,
                     extra_params={"medagent_context_tokens": 4096, "seed": 7})
    LLMClient(timeout=10).complete(spec, [{"role": "user", "content": "hello"}])
    body = fake_llm.requests[0]["body"]
    assert "medagent_context_tokens" not in body and body["seed"] == 7
