"""SMOG readability grade, as used for MultiSenseEval's readability axis.

    grade = 1.0430 * sqrt(polysyllables * 30 / sentences) + 3.1291

(McLaughlin, G. H. (1969). "SMOG Grading - a New Readability Formula". Journal of Reading 12(8),
639-646; the regression form above is the one the paper reports.) A polysyllable is a word of
three or more syllables. The formula was calibrated on 30-sentence samples; for shorter texts
the count is scaled to 30 sentences, as every common implementation does, so very short texts
give noisy grades. For a whole conversation, pool the sensemaker's messages
(`smog_grade_texts`): counts are summed over all messages before the formula is applied.

Choices, documented because grades depend on them:

* Sentences end at ".", "!" or "?" (runs such as "?!" or "..." count once) followed by white
  space, or at the end of the text; titles and Latin abbreviations ("Dr.", "e.g.") and initials
  never end a sentence, units and times ("kg.", "p.m.") only when a capital follows, and
  decimals ("2.5") never do; a list item on its own
  line (starting with "-", "*", a bullet or "1.") is a sentence. A text with words but no final
  punctuation is one sentence.
* Words are runs of letters (with inner apostrophes or hyphens). Numerals are not counted as
  words (McLaughlin asks to read them out; we do not guess their pronunciation). A hyphenated
  word is one word whose syllables are those of its parts. An all-capitals acronym of 2-5
  letters (PTSD, ADHD) is read letter by letter: one syllable per letter, three for "W".
* Syllables are counted by a rule-based estimator (vowel groups, minus silent endings such as
  final "e", "-es", "-ed", plus vowel pairs usually split in speech such as "ia", "io", "eo",
  "ua", "ie" before a consonant at the end of a stem) with a short exception list. It agrees
  with dictionary syllabification on the hand-labelled word list in
  tests/generation/test_readability.py; errors there are reported, not hidden.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

SMOG_SLOPE = 1.0430
SMOG_INTERCEPT = 3.1291

# Words the rules below get wrong, with their dictionary syllable counts.
_EXCEPTIONS = {
    "people": 2, "every": 2, "everyone": 3, "everything": 3, "everybody": 4, "business": 2,
    "area": 3, "idea": 3, "ideas": 3, "create": 2, "created": 3, "creating": 3, "being": 2,
    "doing": 2, "going": 2, "seeing": 2, "quiet": 2, "diet": 2, "science": 2, "client": 2,
    "patient": 2, "patients": 2, "ancient": 2, "friend": 1, "friends": 1, "lifestyle": 2,
    "therapy": 3, "psychiatrist": 4, "psychiatric": 4, "psychological": 5, "via": 2,
    "poem": 2, "toward": 2, "towards": 2, "really": 2, "real": 1, "cereal": 3, "serious": 3,
    "period": 3, "video": 3, "radio": 3, "studio": 3, "reality": 4,
    "fire": 1, "tired": 1, "hour": 1, "hours": 1, "our": 1, "ours": 1,
    "someone": 2, "sometimes": 2, "somewhere": 2, "anyone": 3, "evening": 2, "evenings": 2,
    "interest": 3, "interested": 4, "interesting": 4, "family": 3, "different": 3,
    "naive": 2, "recipe": 3, "simile": 3, "apostrophe": 4, "catastrophe": 4,
    "acne": 2, "maybe": 2, "anyway": 3, "themselves": 2, "yourself": 2, "however": 3,
    "whatever": 3, "because": 2, "breathe": 1, "breathes": 1, "clothes": 1, "used": 1,
    "behavior": 3, "behaviour": 3, "behaviors": 3, "behaviours": 3, "react": 2, "reaction": 3,
    "reactions": 3, "reassure": 3, "reassured": 3, "reassurance": 4, "reassuring": 4, "realistic": 4,
    "genuine": 3, "alcohol": 3, "actually": 4, "usually": 4, "gradually": 4, "individual": 5,
    "genuinely": 4,
}

# Abbreviations that precede more of the same sentence ("Dr. Lee", "e.g. walking"): never an end.
_TITLES = {"dr", "mr", "mrs", "ms", "prof", "st", "vs", "e.g", "i.e", "eg", "ie", "approx", "fig", "cf", "al", "no"}
# Abbreviations that may close a sentence ("I lost 4 kg. Then..."): an end when a capital follows.
_UNITS = {
    "etc", "a.m", "p.m", "am", "pm", "min", "mg", "kg", "cm", "km", "lb", "lbs", "hrs", "mins",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}

_WORD = re.compile(r"[A-Za-z]+(?:['\u2019-][A-Za-z]+)*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def _stem_syllables(w: str) -> int:
    if len(w) <= 3:
        return 1 if re.search(r"[aeiouy]", w) else (1 if w else 0)
    if w in _EXCEPTIONS:
        return _EXCEPTIONS[w]
    # compounds and suffixes whose syllables are known: count the rest, then add them
    for prefix, extra in (("some", 1), ("every", 2), ("any", 2)):
        if w.startswith(prefix) and len(w) - len(prefix) >= 3:
            return extra + _stem_syllables(w[len(prefix):])
    for suffix, extra in (("fully", 2), ("ness", 1), ("ment", 1), ("ful", 1), ("less", 1), ("able", 2)):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return _stem_syllables(w[: -len(suffix)]) + extra
    if w.endswith("ly") and len(w) > 5 and not w.endswith(("ily", "ely")) and w[-3] not in "aeiouyl":
        return _stem_syllables(w[:-2]) + 1
    if w.endswith("ely") and len(w) > 5:
        return _stem_syllables(w[:-3]) + 1  # "lately" = late + ly
    core = w
    # silent endings
    if core.endswith("ed") and len(core) > 4 and core[-3] not in "td":
        core = core[:-2]
    elif core.endswith("es") and len(core) > 4 and not re.search(r"(?:[sxzgc]|ch|sh)es$", core):
        core = core[:-1]  # "hopes" -> "hope", then the silent-e rule; "changes" keeps its syllable
    if core.endswith("e") and not core.endswith(("le", "ee", "ye", "ie")) and len(core) > 3:
        core = core[:-1]
    elif core.endswith("le") and len(core) > 3 and core[-3] in "aeiouy":
        core = core[:-1]  # "whole", "smile": silent e
    groups = re.findall(r"[aeiouy]+", core)
    count = len(groups)
    # vowel pairs that are usually two syllables
    count += len(re.findall(r"(?<!c)(?<!t)(?<!s)(?<!x)ia(?!n?$)|ia$", core))
    count += len(re.findall(r"(?<![cgtsx])io|[^aeiou]eo|ua(?!r)|uo|ii|[^aeiouq]ue(?=[^aeious]|$)(?<!gue)", core))
    count += len(re.findall(r"[^aeiou]ie(?=t|ty|r)", core))
    count += len(re.findall(r"[^aeioutc]ien[ct]", core))  # "experience", "audience" (not "patience")
    count += len(re.findall(r"[aeiou]y[aeiou]", core))  # "loyal", "crayon": y between vowels
    count += len(re.findall(r"eing|ying|oing|aing", core))
    return max(1, count)


def count_syllables(word: str) -> int:
    """Estimated syllables of one word (see the module docstring for the rules)."""
    word = word.strip().replace("\u2019", "'")
    if not word:
        return 0
    if re.fullmatch(r"[A-Z]{2,5}s?", word) and not re.fullmatch(r"[A-Z][a-z]+", word):
        letters = word.rstrip("s") if word.endswith("s") and word[:-1].isupper() else word
        return sum(3 if ch == "W" else 1 for ch in letters)
    parts = [p for p in re.split(r"-", word.lower()) if p]
    total = 0
    for part in parts:
        part = re.sub(r"'(?:s|d|ll|re|ve|t|m)$", "", part)
        part = re.sub(r"[^a-z]", "", part)
        if part:
            total += _stem_syllables(part)
    return total


def _split_on_punctuation(segment: str) -> list[str]:
    sentences, start = [], 0
    for match in re.finditer(r"[.!?]+(?=[\"')\]\u201d\u2019]*(?:\s|$))", segment):
        end = match.end()
        before = segment[start:match.start()]
        last_token = re.search(r"([A-Za-z][A-Za-z.]*)$", before)
        if match.group() == "." and last_token:
            token = last_token.group(1).lower().rstrip(".")
            following = segment[end:].lstrip(" \"')\u201d\u2019")
            if token in _TITLES or re.fullmatch(r"[a-z]", token):  # "Dr." "e.g." or an initial "J."
                continue
            if token in _UNITS and following and not following[:1].isupper():
                continue
        sentences.append(segment[start:end])
        start = end
    sentences.append(segment[start:])
    return [s.strip() for s in sentences if _WORD.search(s)]


def split_sentences(text: str | None) -> list[str]:
    if not text or not text.strip():
        return []
    segments: list[str] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip() or _LIST_ITEM.match(line):
            if current:
                segments.append(" ".join(current))
            current = [_LIST_ITEM.sub("", line)] if line.strip() else []
        else:
            current.append(line.strip())
    if current:
        segments.append(" ".join(current))
    sentences: list[str] = []
    for segment in segments:
        sentences.extend(_split_on_punctuation(segment))
    return sentences


def words(text: str) -> list[str]:
    return _WORD.findall(text or "")


@dataclass(frozen=True)
class SmogCounts:
    sentences: int
    words: int
    polysyllables: int

    def __add__(self, other: SmogCounts) -> SmogCounts:
        return SmogCounts(self.sentences + other.sentences, self.words + other.words,
                          self.polysyllables + other.polysyllables)

    @property
    def grade(self) -> float | None:
        if self.sentences == 0:
            return None
        return SMOG_SLOPE * math.sqrt(self.polysyllables * 30 / self.sentences) + SMOG_INTERCEPT


def smog_counts(text: str | None) -> SmogCounts:
    sentences = split_sentences(text)
    tokens = [w for s in sentences for w in words(s)]
    return SmogCounts(len(sentences), len(tokens), sum(1 for w in tokens if count_syllables(w) >= 3))


def smog_grade(text: str | None) -> float | None:
    """SMOG grade of one text; None when it has no sentence (empty or only numbers/symbols)."""
    return smog_counts(text).grade


def smog_grade_texts(texts: Iterable[str | None]) -> float | None:
    """SMOG grade of several texts pooled (e.g. all sensemaker messages of a conversation)."""
    total = SmogCounts(0, 0, 0)
    for text in texts:
        total = total + smog_counts(text)
    return total.grade
