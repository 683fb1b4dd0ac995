"""GBNF grammars for the reply format of each prompt kind (grammar-constrained decoding).

A small model does not follow our line formats on its own (SmolLM2-135M writes free prose where
`CONFIDENCE:` is required). Servers built on llama.cpp accept a GBNF grammar with each request and
only let the model produce tokens the grammar allows. The grammars in
`prompts/<version>/grammars/<kind>.gbnf` fix the FORMAT -- labels, line structure, integer ranges,
MOVE_NEXT/STAY, '#'-prefixed candidate lines, NO MATCH -- while free-text fields stay the model's
own words, bounded in length so that generation always ends within `max_tokens`. The strict
parsers still check every reply; a grammar is a help to the model, never a substitute for them.

Only models whose configuration opts in (`extra_params: {"medagent_grammar": "gbnf"}`) get a
grammar: other providers reject or silently ignore the unknown field.

Grammars are validated here before they are sent: llama.cpp's server process dies (it does not
answer 400) on a grammar that references an undefined rule, so a bad file must fail in our process,
with its name and line, not take the model server down. The checks mirror llama.cpp's own parser
(rule names of letters, digits and '-', literals in double quotes, character classes, groups,
`* + ? {m,n}`, comments) and its semantic checks (undefined rules, left recursion).

Templates: a grammar may use `$fact_number`, replaced by the alternatives "1" | ... | "n" for the
fact list of the current prompt, so a fact number outside the list cannot even be generated.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from string import Template

from .prompt_set import PROMPT_DIR, PROMPT_KINDS

MAX_FACT_NUMBER = 200  # the alternation grows with the list; no real case has this many facts


class GrammarError(ValueError):
    pass


# --- a GBNF reader (structure only) -------------------------------------------------------------
# Nodes: ("lit", str) | ("cls", negated, [(lo, hi), ...]) | ("any",) | ("ref", name)
#        | ("seq", [node, ...]) | ("alt", [node, ...]) | ("rep", node, min, max or None)


def _is_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "-")


class _Reader:
    def __init__(self, text: str, name: str):
        self.text = text
        self.name = name
        self.pos = 0

    def error(self, message: str) -> GrammarError:
        line = self.text.count("\n", 0, self.pos) + 1
        return GrammarError(f"{self.name}, line {line}: {message}")

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def space(self, newline_ok: bool) -> None:
        while self.peek() and (self.peek() in " \t#" or (newline_ok and self.peek() in "\r\n")):
            if self.peek() == "#":
                while self.peek() and self.peek() not in "\r\n":
                    self.pos += 1
            else:
                self.pos += 1

    def name_token(self) -> str:
        start = self.pos
        while self.peek() and _is_word_char(self.peek()):
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expected a rule name at {self.text[start:start + 20]!r}")
        return self.text[start:self.pos]

    def integer(self) -> int:
        start = self.pos
        while self.peek().isdigit():
            self.pos += 1
        if self.pos == start:
            raise self.error("expected an integer")
        return int(self.text[start:self.pos])

    def char(self) -> str:
        c = self.peek()
        if not c:
            raise self.error("unexpected end of grammar")
        if c != "\\":
            self.pos += 1
            return c
        code = self.peek(1)
        simple = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "[": "[", "]": "]"}
        if code in simple:
            self.pos += 2
            return simple[code]
        size = {"x": 2, "u": 4, "U": 8}.get(code)
        if size is None:
            raise self.error(f"unknown escape \\{code}")
        digits = self.text[self.pos + 2:self.pos + 2 + size]
        if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.error(f"expected {size} hex digits after \\{code}")
        self.pos += 2 + size
        return chr(int(digits, 16))

    # grammar structure
    def alternates(self, nested: bool):
        options = [self.sequence(nested)]
        while self.peek() == "|":
            self.pos += 1
            self.space(True)
            options.append(self.sequence(nested))
        return options[0] if len(options) == 1 else ("alt", options)

    def sequence(self, nested: bool):
        items: list = []
        while self.peek():
            c = self.peek()
            if c == '"':
                self.pos += 1
                chars = []
                while self.peek() != '"':
                    if not self.peek():
                        raise self.error("unterminated string literal")
                    chars.append(self.char())
                self.pos += 1
                items.append(("lit", "".join(chars)))
            elif c == "[":
                self.pos += 1
                negated = self.peek() == "^"
                if negated:
                    self.pos += 1
                ranges = []
                while self.peek() != "]":
                    if not self.peek():
                        raise self.error("unterminated character class")
                    low = self.char()
                    high = low
                    if self.peek() == "-" and self.peek(1) != "]":
                        self.pos += 1
                        high = self.char()
                    if ord(high) < ord(low):
                        raise self.error(f"empty character range {low!r}-{high!r}")
                    ranges.append((low, high))
                self.pos += 1
                items.append(("cls", negated, ranges))
            elif _is_word_char(c):
                items.append(("ref", self.name_token()))
            elif c == "(":
                self.pos += 1
                self.space(True)
                inner = self.alternates(True)
                if self.peek() != ")":
                    raise self.error("expected ')'")
                self.pos += 1
                items.append(inner)
            elif c == ".":
                self.pos += 1
                items.append(("any",))
            elif c in "*+?{":
                if not items:
                    raise self.error(f"'{c}' has nothing to repeat")
                self.pos += 1
                if c == "*":
                    low, high = 0, None
                elif c == "+":
                    low, high = 1, None
                elif c == "?":
                    low, high = 0, 1
                else:
                    self.space(nested)
                    low = self.integer()
                    self.space(nested)
                    if self.peek() == "}":
                        high = low
                    elif self.peek() == ",":
                        self.pos += 1
                        self.space(nested)
                        high = self.integer() if self.peek().isdigit() else None
                        self.space(nested)
                        if self.peek() != "}":
                            raise self.error("expected '}'")
                    else:
                        raise self.error("expected ',' or '}' in a repetition")
                    if high is not None and high < low:
                        raise self.error(f"repetition {{{low},{high}}} has max < min")
                    self.pos += 1
                items.append(("rep", items.pop(), low, high))
            else:
                break
            self.space(nested)
        return items[0] if len(items) == 1 else ("seq", items)


def parse_gbnf(text: str, name: str = "grammar") -> dict[str, tuple]:
    """Rules of a GBNF grammar; raises GrammarError where llama.cpp would refuse it (or crash)."""
    reader = _Reader(text, name)
    rules: dict[str, tuple] = {}
    reader.space(True)
    while reader.peek():
        rule_name = reader.name_token()
        reader.space(False)
        if reader.text[reader.pos:reader.pos + 3] != "::=":
            raise reader.error(f"expected '::=' after {rule_name}")
        reader.pos += 3
        reader.space(True)
        if rule_name in rules:
            raise reader.error(f"rule {rule_name} is defined twice")
        rules[rule_name] = reader.alternates(False)
        if reader.peek() and reader.peek() not in "\r\n":
            raise reader.error(f"unexpected {reader.text[reader.pos:reader.pos + 20]!r}")
        reader.space(True)
    if "root" not in rules:
        raise GrammarError(f"{name}: no root rule")
    for rule_name, node in rules.items():
        for ref in _refs(node):
            if ref not in rules:
                raise GrammarError(f"{name}: rule {rule_name} uses undefined rule {ref}")
    _check_left_recursion(rules, name)
    return rules


def _refs(node) -> set[str]:
    kind = node[0]
    if kind == "ref":
        return {node[1]}
    if kind in ("seq", "alt"):
        return set().union(*(_refs(child) for child in node[1]))
    if kind == "rep":
        return _refs(node[1])
    return set()


def _nullable(node, rules, seen=frozenset()) -> bool:
    kind = node[0]
    if kind == "lit":
        return node[1] == ""
    if kind in ("cls", "any"):
        return False
    if kind == "ref":
        return node[1] not in seen and _nullable(rules[node[1]], rules, seen | {node[1]})
    if kind == "seq":
        return all(_nullable(child, rules, seen) for child in node[1])
    if kind == "alt":
        return any(_nullable(child, rules, seen) for child in node[1])
    return node[2] == 0 or _nullable(node[1], rules, seen)  # rep


def _leading_refs(node, rules) -> set[str]:
    """Rules that can be entered before any character is consumed."""
    kind = node[0]
    if kind == "ref":
        return {node[1]}
    if kind == "alt":
        return set().union(*(_leading_refs(child, rules) for child in node[1]))
    if kind == "rep":
        return _leading_refs(node[1], rules)
    if kind == "seq":
        found: set[str] = set()
        for child in node[1]:
            found |= _leading_refs(child, rules)
            if not _nullable(child, rules):
                break
        return found
    return set()


def _check_left_recursion(rules: dict[str, tuple], name: str) -> None:
    for start in rules:
        stack, seen = [start], set()
        while stack:
            for ref in _leading_refs(rules[stack.pop()], rules):
                if ref == start:
                    raise GrammarError(f"{name}: rule {start} is left-recursive")
                if ref not in seen:
                    seen.add(ref)
                    stack.append(ref)


# --- loading and rendering ----------------------------------------------------------------------
@dataclass(frozen=True)
class GrammarSet:
    version: str
    templates: dict[str, Template]
    digest: str  # sha256 over the grammar files, recorded with conversations that used them


def grammar_dir(version: str):
    return PROMPT_DIR / version / "grammars"


@lru_cache(maxsize=8)
def load_grammars(version: str) -> GrammarSet:
    """Every kind's grammar template of a prompt version, each checked with a sample rendering."""
    directory = grammar_dir(version)
    if not directory.is_dir():
        raise GrammarError(f"prompt version {version} has no grammars/ directory")
    digest = hashlib.sha256()
    templates: dict[str, Template] = {}
    for kind in PROMPT_KINDS:
        path = directory / f"{kind}.gbnf"
        if not path.exists():
            raise GrammarError(f"prompt version {version} lacks grammars/{path.name}")
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode("utf-8"))
        templates[kind] = Template(text)
        _render(templates[kind], f"{version}/grammars/{path.name}", 3)  # fail at load, not mid-conversation
    return GrammarSet(version, templates, digest.hexdigest())


def fact_number_alternatives(count: int) -> str:
    if not 1 <= count <= MAX_FACT_NUMBER:
        raise GrammarError(f"fact lists of 1 to {MAX_FACT_NUMBER} items are supported, got {count}")
    return "(" + " | ".join(f'"{n}"' for n in range(count, 0, -1)) + ")"


def _render(template: Template, name: str, fact_count: int | None) -> str:
    values = {"fact_number": fact_number_alternatives(fact_count)} if fact_count is not None else {}
    try:
        text = template.substitute(values)
    except KeyError as exc:
        raise GrammarError(f"{name} needs the value ${exc.args[0]}") from None
    except ValueError as exc:
        raise GrammarError(f"{name}: {exc}") from None
    parse_gbnf(text, name)
    return text


@lru_cache(maxsize=256)
def render_grammar(version: str, kind: str, fact_count: int | None = None) -> str:
    """The checked grammar text for one call; `fact_count` is the length of the numbered fact list."""
    grammars = load_grammars(version)
    if kind not in grammars.templates:
        raise GrammarError(f"prompt version {version} has no grammar for {kind!r}")
    return _render(grammars.templates[kind], f"{version}/grammars/{kind}.gbnf", fact_count)
