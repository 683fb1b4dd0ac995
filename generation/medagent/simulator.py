"""Offline simulator: a deterministic in-process LiteLLM provider named `simulator`.

It is NOT a language model. It reads the marker line of each MedAgent prompt
(`[medagent:v1:<kind>]`), pulls the case facts, questions and previous messages out of the
prompt's tagged blocks, and builds a well-formed reply from them with simple rules and
templates. Everything is a function of sha256(model string + prompt), so the same inputs always
give the same output, while different conversations still vary.

It also answers judge prompts (`[judge:<version>]`) with a rule-based judge, simulator_judge.py.

It plays every role and lets the pipeline's rules happen naturally: generic history questions
find no matching fact (NO MATCH), template pools run dry so candidates become redundant (and
sometimes all three), stage decisions STAY until enough has been said (sometimes until the
5-turn cap forces the move), and every conversation reaches Exit.

Use `simulator/<anything>` as the model string; `register_simulator()` must have run in the
process (the LLM client does it for simulator models). Output is labelled by its model string:
`is_simulated_model()` is how the platform marks it as simulated wherever it appears.
"""
from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from typing import Any

from .prompt_set import parse_marker
from .simulator_judge import is_judge_prompt, simulate_judge_reply

PROVIDER = "simulator"
SIMULATOR_LABEL = "Offline simulator (rule-based text, not a language model)"
SYSTEM_FINGERPRINT = "medagent-simulator-v1"


def is_simulated_model(model: str | None) -> bool:
    return bool(model) and model.strip().lower().startswith(f"{PROVIDER}/")


# ------------------------------------------------------------------------------------------------
# Text helpers
# ------------------------------------------------------------------------------------------------
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves i'm i've i'd you're you've it's that's don't can't didn't
doesn't isn't wasn't tell share describe let like also really thing things something anything
lot bit much many feel feeling felt mentioned said say today day right okay sure well get got
patient patient's one ever been since still kind sort maybe know think
""".split())

_SYNONYMS = {
    "hope": "want", "hoping": "want", "expect": "want", "expectations": "want", "expectation": "want",
    "goal": "want", "goals": "want", "looking": "want", "wish": "want", "matters": "want",
    "sleeping": "sleep", "slept": "sleep", "asleep": "sleep", "insomnia": "sleep", "nights": "sleep",
    "drinking": "alcohol", "drink": "alcohol", "drinks": "alcohol", "beer": "alcohol", "wine": "alcohol",
    "eating": "eat", "appetite": "eat", "meals": "eat", "food": "eat", "weight": "eat",
    "worried": "worry", "worries": "worry", "worrying": "worry", "anxious": "worry", "anxiety": "worry",
    "sad": "mood", "low": "mood", "down": "mood", "depressed": "mood", "hopeless": "mood",
    "medicine": "medication", "medications": "medication", "pills": "medication", "tablets": "medication",
    "prescribed": "medication", "dose": "medication",
    "job": "work", "working": "work", "office": "work", "school": "work", "studies": "work",
    "family": "family", "mother": "family", "father": "family", "parents": "family", "sister": "family",
    "brother": "family", "husband": "family", "wife": "family", "partner": "family",
    "started": "start", "began": "start", "beginning": "start", "onset": "start", "weeks": "start",
    "months": "start", "years": "start", "long": "start",
}


def _stem(word: str) -> str:
    word = word.lower().strip("'")
    word = _SYNONYMS.get(word, word)
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return _SYNONYMS.get(word, word)[:6]


def content_words(text: str) -> set[str]:
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text.lower())
    return {_stem(w) for w in words if w not in STOPWORDS and len(w) > 2}


def similarity(a: str, b: str) -> float:
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 1.0 if a.strip().lower() == b.strip().lower() else 0.0
    return len(wa & wb) / len(wa | wb)


def split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", text)
    return [p.strip() for p in parts if re.search(r"[A-Za-z]", p)]


def _block(prompt: str, tag: str) -> str:
    match = re.search(rf"^<{tag}>\n(.*?)\n</{tag}>$", prompt, re.DOTALL | re.MULTILINE)
    return match.group(1).strip() if match else ""


def _numbered_items(block: str) -> list[str]:
    items = []
    for line in block.split("\n"):
        match = re.match(r"^\s*\d+\.\s+(.*\S)", line)
        if match:
            items.append(match.group(1))
    return items


def _field(prompt: str, pattern: str, default: str = "") -> str:
    match = re.search(pattern, prompt, re.MULTILINE)
    return match.group(1) if match else default


# --- person conversion (good enough for simulated text, documented as such) --------------------
_SUBJECT = re.compile(
    r"^(?:the patient|he|she|they|the (?:man|woman|boy|girl|student|veteran|mother|father)"
    r"|(?:a|an) \d+[- ]year[- ]old [a-z -]*?"
    r"(?:man|woman|boy|girl|male|female|student|veteran|patient|mother|father))\b",
    re.IGNORECASE,
)
_THIRD_TO_FIRST_VERB = {
    "is": "am", "has": "have", "does": "do", "was": "was", "says": "say", "reports": "report",
    "presents": "came in", "comes": "came", "describes": "describe", "states": "say", "notes": "notice",
    "denies": "deny", "admits": "admit", "endorses": "have", "complains": "complain", "feels": "feel",
    "works": "work", "lives": "live", "drinks": "drink", "sleeps": "sleep", "takes": "take",
    "spends": "spend", "avoids": "avoid", "worries": "worry", "believes": "believe", "hears": "hear",
}


_AGE_SUBJECT = re.compile(
    r"^(?:a|an) (\d+)[- ]year[- ]old ((?:[a-z-]+ ){0,3}?[a-z-]+?)\s+(?=(?:who\s+)?(?:says|reports|presents|comes|"
    r"is|has|had|visits|was|describes|states|complains|feels|notes|lives|works|drinks|presented|came)\b)",
    re.IGNORECASE,
)
_VISIT = re.compile(r"^(?:who )?(?:presents|comes|is brought|is referred|visits|presented|came)\b[^.]*?"
                    r"\b(?:with|for|because of|about)\b\s*(.*)$", re.IGNORECASE)
_REPORTING = re.compile(r"^I (?:reports|says|states|notes|describes|mentions|admits|explains)(?: that)?\s+(.*)$",
                        re.IGNORECASE)


_ADVERBS = "now|also|still|often|never|always|sometimes|usually|really|just|rarely|barely"
_COMMON_VERBS = "has|is|does|starts|avoids|drinks|feels|wakes|gets|needs|wants|tries|finds|thinks|keeps|sleeps|eats"


def _first_person_verb(verb: str) -> str:
    low = verb.lower()
    if low in _THIRD_TO_FIRST_VERB:
        return _THIRD_TO_FIRST_VERB[low]
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if re.search(r"(?:sh|ch|ss|x)es$", low):
        return verb[:-2]
    if low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(low) > 3:
        return verb[:-1]
    return verb


def to_first_person(sentence: str) -> str:
    s = sentence.strip().rstrip(".")
    age = _AGE_SUBJECT.match(s)
    if age:
        prefix = f"I'm a {age.group(1)}-year-old {age.group(2)}"
        rest = s[age.end():].strip(" ,")
        visit = _VISIT.match(rest)
        if visit:
            return to_first_person(f"{prefix} and I've been dealing with {visit.group(1)}") if visit.group(1) \
                else prefix + "."
        converted = to_first_person("He " + rest)
        return f"{prefix}, and {converted[0].lower() if not converted.startswith('I') else 'I'}{converted[1:]}"
    s = _SUBJECT.sub("I", s, count=1)
    # "I reports that I feel..." -> "I feel..."; "I reports waking..." -> "I'm waking..."
    reporting = _REPORTING.match(s)
    if reporting:
        rest = reporting.group(1)
        pronoun = re.match(r"^(?:he|she|they)\s+(.*)$", rest, re.IGNORECASE)
        if pronoun:
            s = "I " + pronoun.group(1)
        elif re.match(r"^[a-z]+ing\b", rest):
            s = "I'm " + rest
        else:
            s = rest[0].upper() + rest[1:]
    s = re.sub(r"^(?:Her|His|Their)\b", "My", s)
    s = re.sub(r"\b(?:he|she)\b(?=\s+\w)", "I", s)
    s = re.sub(r"\b(?:He|She)\b", "I", s)
    s = re.sub(r"\b(?:the patient's|his|their)\b", "my", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(?:himself|herself|themselves)\b", "myself", s, flags=re.IGNORECASE)
    s = re.sub(r"\bher\b(?=\s*(?:[.,;!?]|$|and|or|to|that|about|with|from|for))", "me", s)
    s = re.sub(r"\bher\b", "my", s)
    s = re.sub(r"\bhim\b", "me", s)

    s = re.sub(r"\bI ([a-z]+)\b", lambda m: "I " + _first_person_verb(m.group(1)), s)
    s = re.sub(rf"\bI ({_ADVERBS}) ([a-z]+)\b", lambda m: f"I {m.group(1)} {_first_person_verb(m.group(2))}", s)
    if s.startswith("I"):
        s = re.sub(rf"\b(and|but|or) ((?:{_ADVERBS}) )?({_COMMON_VERBS})\b",
                   lambda m: f"{m.group(1)} {m.group(2) or ''}{_first_person_verb(m.group(3))}", s)
    s = re.sub(r"\bI am been\b", "I have been", s)
    s = s[0].upper() + s[1:] if s else s
    return s if s.endswith((".", "!", "?")) else s + "."


_FIRST_TO_THIRD = [
    (r"\bI'm\b|\bI am\b", "the patient is"), (r"\bI've\b|\bI have\b", "the patient has"),
    (r"\bI was\b", "the patient was"), (r"\bI had\b", "the patient had"), (r"\bI'd\b", "the patient would"),
    (r"\bI don't\b|\bI do not\b", "the patient does not"), (r"\bI can't\b|\bI cannot\b", "the patient cannot"),
    (r"\bI didn't\b", "the patient did not"), (r"\bI'll\b", "the patient will"),
    (r"\bmyself\b", "themselves"), (r"\bmy\b", "their"), (r"\bme\b", "them"),
]


def to_third_person(sentence: str) -> str:
    s = sentence.strip()
    for pattern, repl in _FIRST_TO_THIRD:
        s = re.sub(pattern, repl, s, flags=re.IGNORECASE)

    def conj(match: re.Match) -> str:
        verb = match.group(1)
        if verb in ("will", "would", "could", "should", "might", "must", "can", "also", "really", "just",
                    "never", "always", "still", "often", "sometimes", "usually") or verb.endswith("ed"):
            return f"the patient {verb}"
        if verb.endswith("y") and verb[-2:-1] not in "aeiou":
            return f"the patient {verb[:-1]}ies"
        if verb.endswith(("sh", "ch", "ss", "x", "o")):
            return f"the patient {verb}es"
        return f"the patient {verb}s"

    s = re.sub(r"\bI ([a-z]+)\b", conj, s)
    s = re.sub(r"^(?:yes|no|well|honestly|so|um|okay|oh)\b[,.]?\s*", "", s, flags=re.IGNORECASE)
    s = s.strip()
    if not s:
        return ""
    s = s[0].upper() + s[1:]
    return s if s.endswith((".", "!", "?")) else s + "."


# Third-person verbs that, after "and"/"but"/"or" in a fact about the patient, share its subject.
_COORDINATED_VERBS = {
    "takes": "take", "has": "have", "is": "are", "was": "were", "does": "do", "drinks": "drink",
    "uses": "use", "smokes": "smoke", "works": "work", "lives": "live", "feels": "feel", "sleeps": "sleep",
    "eats": "eat", "reports": "report", "denies": "deny", "avoids": "avoid", "wakes": "wake",
}


def to_second_person(fact: str) -> str:
    s = fact.strip().rstrip(".")
    s = re.sub(r"^The patient is\b", "you are", s, flags=re.IGNORECASE)
    s = re.sub(r"^The patient has\b", "you have", s, flags=re.IGNORECASE)
    s = re.sub(r"^The patient was\b", "you were", s, flags=re.IGNORECASE)
    s = re.sub(r"^The patient does not\b", "you do not", s, flags=re.IGNORECASE)
    s = re.sub(r"^The patient cannot\b", "you cannot", s, flags=re.IGNORECASE)

    def verb(match: re.Match) -> str:
        v = match.group(1)
        if v.endswith("ies"):
            return "you " + v[:-3] + "y"
        if v.endswith(("shes", "ches", "sses", "xes", "oes")):
            return "you " + v[:-2]
        if v.endswith("s"):
            return "you " + v[:-1]
        return "you " + v

    s = re.sub(r"^The patient ([a-z]+)\b", verb, s, flags=re.IGNORECASE)
    if s.startswith("you "):
        # A second verb of the same subject: "uses no drugs and takes no medication".
        third_person = r"\b(?:" + "|".join(_COORDINATED_VERBS) + r")\b"

        def coordinated(m: re.Match) -> str:
            # Only when no other subject's verb came first ("her mother has diabetes and takes insulin").
            if re.search(third_person, s[:m.start()]):
                return m.group(0)
            return f"{m.group(1)} {_COORDINATED_VERBS[m.group(2)]}"

        s = re.sub(r"\b((?:and|but|or)(?: (?:otherwise|also|still|rarely|often|never|sometimes|usually|only))*) ("
                   + "|".join(_COORDINATED_VERBS) + r")\b", coordinated, s)
    s = re.sub(r"\bthe patient (" + "|".join(_COORDINATED_VERBS) + r")\b",
               lambda m: "you " + _COORDINATED_VERBS[m.group(1).lower()], s, flags=re.IGNORECASE)
    s = re.sub(r"\bthe patient\b", "you", s, flags=re.IGNORECASE)
    s = re.sub(r"\btheir\b", "your", s, flags=re.IGNORECASE)
    s = re.sub(r"\bthemselves\b", "yourself", s)
    s = re.sub(r"\bthey\b", "you", s)
    if s.lower().startswith("the patient"):
        s = "you said: " + s
    return s[0].lower() + s[1:] if s else s


# ------------------------------------------------------------------------------------------------
# Conditions the simulated sensemaker can recognise (keywords -> diagnosis text)
# ------------------------------------------------------------------------------------------------
CONDITIONS = [
    (("akathisia", "restless", "can't sit still", "pacing", "antipsychotic"),
     "akathisia, a restlessness that can be a side effect of some medications",
     ["keeping a simple diary of when the restlessness is worst",
      "gentle stretching or short walks when it builds up"]),
    (("flashback", "nightmare", "trauma", "assault", "accident", "combat", "deployment", "startle"),
     "post-traumatic stress disorder (PTSD)",
     ["a grounding routine for moments when memories come back", "keeping a regular evening wind-down routine"]),
    (("obsess", "compuls", "checking", "contamination", "washing", "intrusive thought", "ritual"),
     "obsessive-compulsive disorder (OCD)",
     ["noting down urges and how long they last before acting", "gradually delaying a ritual by a few minutes"]),
    (("panic", "racing heart", "palpitation", "chest tight", "going to die", "attack"),
     "panic disorder",
     ["slow breathing practice for a few minutes each day", "cutting back on caffeine"]),
    (("voices", "hallucinat", "paranoi", "being watched", "delusion", "hearing things"),
     "a schizophrenia-spectrum psychotic disorder",
     ["keeping a steady daily routine with regular meals and sleep",
      "staying in touch with one trusted person each day"]),
    (("euphori", "racing thoughts", "little sleep", "spending spree", "grandios", "manic", "mania", "energetic"),
     "bipolar disorder",
     ["keeping a mood and sleep diary", "protecting a regular sleep schedule"]),
    (("alcohol", "drink", "beer", "wine", "vodka", "hangover", "blackout"),
     "alcohol use disorder",
     ["setting alcohol-free days each week", "finding a non-drinking activity for the evenings"]),
    (("binge", "purg", "vomit", "restrict", "calorie", "weight loss", "body image", "eating"),
     "an eating disorder",
     ["eating regular meals at set times", "noticing and writing down thoughts about food and body"]),
    (("inattent", "distract", "forget", "fidget", "focus", "deadline", "disorganis", "disorganiz", "impulsiv"),
     "attention-deficit/hyperactivity disorder (ADHD)",
     ["breaking tasks into short, timed blocks", "using reminders and a written daily plan"]),
    (("fall asleep", "falling asleep", "insomnia", "wake up", "waking", "awake", "sleep"),
     "insomnia disorder",
     ["keeping the same wake-up time every day", "a screen-free half hour before bed"]),
    (("worry", "worries", "nervous", "on edge", "tense", "restless", "anxious", "anxiety"),
     "generalised anxiety disorder",
     ["a daily ten-minute 'worry time' to contain worrying", "regular physical activity such as brisk walks"]),
    (("sad", "low mood", "hopeless", "interest", "worthless", "tearful", "depress", "empty", "tired"),
     "major depressive disorder (depression)",
     ["a short walk outside each day", "planning one small enjoyable activity each day"]),
]

GENERAL_SUGGESTIONS = [
    "talking regularly with a friend or family member you trust",
    "keeping a simple journal of how you feel each evening",
    "a regular daily routine with fixed meal times",
    "spending some time outdoors each day",
    "joining a peer support group",
]


def find_condition(text: str):
    low = text.lower()
    best, best_hits = None, 0
    for keywords, diagnosis, suggestions in CONDITIONS:
        hits = sum(1 for k in keywords if k in low)
        if hits > best_hits:
            best, best_hits = (diagnosis, suggestions), hits
    return best


# ------------------------------------------------------------------------------------------------
# Persona styling
# ------------------------------------------------------------------------------------------------
def _persona(prompt: str) -> tuple[str, str]:
    trait = _field(prompt, r"^Dominant trait: high ([a-z]+)\.", "agreeableness")
    literacy = _field(prompt, r"^Health literacy: ([a-z]+)\.", "functional")
    return trait, literacy


_OPENERS = {
    "openness": ["I've been wondering why this is happening.", "I'm curious what could explain this."],
    "conscientiousness": ["I've been keeping track of this carefully.", "Let me be precise about it."],
    "extraversion": ["Oh, thanks so much for asking!", "Honestly, where do I even start!"],
    "agreeableness": ["Of course, happy to share.", "Sure, that makes sense to ask."],
    "neuroticism": ["I'm really worried about all of this.", "Sorry, this is making me anxious."],
}
_CLOSERS = {
    "openness": ["Why do you think that is?", "Is there another way to look at it?"],
    "conscientiousness": ["I can give you exact dates if that helps.", "I wrote it all down."],
    "extraversion": ["Anyway, it's been quite a ride.", "My friends keep telling me to sort it out!"],
    "agreeableness": ["Whatever you think is best.", "I hope that helps."],
    "neuroticism": ["Is that bad? Should I be scared?", "Please tell me it's not serious."],
}
_LITERACY_HEDGE = {
    "basic": ["I don't really know the right words, but", "It's hard to explain, but"],
    "functional": ["", "Basically,"],
    "advanced": ["To be specific,", "Clinically speaking,"],
}


def _styled(rng: random.Random, trait: str, literacy: str, core: str, opener: bool = True) -> str:
    parts = []
    if opener and rng.random() < 0.7:
        parts.append(rng.choice(_OPENERS.get(trait, [""])))
    hedge = rng.choice(_LITERACY_HEDGE.get(literacy, [""]))
    if hedge:
        keep_capital = re.match(r"I\b", core) is not None
        core = f"{hedge} {core if keep_capital else core[0].lower() + core[1:]}"
    parts.append(core)
    if rng.random() < 0.5:
        parts.append(rng.choice(_CLOSERS.get(trait, [""])))
    return " ".join(p for p in parts if p).strip()


# ------------------------------------------------------------------------------------------------
# The answering brain, one function per prompt kind
# ------------------------------------------------------------------------------------------------
_VITAL = re.compile(r"temperature|blood pressure|\bpulse\b|heart rate|respirat|\bbpm\b|mm ?hg|°[CF]|breaths", re.I)


def _case_extraction(prompt: str, rng: random.Random) -> str:
    case = _block(prompt, "case")
    vitals, facts = [], []
    for sentence in split_sentences(case):
        if sentence.endswith("?") or re.match(r"^(which|what) of the following", sentence, re.I):
            continue
        if _VITAL.search(sentence):
            for clause in re.split(r",\s*(?:and\s+)?|;\s*|\band\b", sentence):
                clause = clause.strip(" .")
                clause = re.sub(r"^(?:(?:her|his|their|the patient's)\s+)", "", clause, flags=re.IGNORECASE)
                if _VITAL.search(clause):
                    vitals.append(clause[0].upper() + clause[1:] + ".")
            continue
        for clause in re.split(r";\s*", sentence):
            clause = clause.strip()
            if len(clause.split()) >= 3:
                facts.append(to_first_person(clause))
    if not facts:
        facts = [to_first_person(case[:200] or "I am not feeling well")]
    low = case.lower()
    if re.search(r"medication|side effect|started taking|prescri|dose|pills", low):
        intent = "interpreting_information"
    elif re.search(r"sleep|alcohol|drink|exercise|diet|eating|routine|caffeine", low):
        intent = "lifestyle_literacy"
    else:
        intent = "personalising_care"
    if re.search(r"suicid|self-harm|overdose|weight loss|not eating|purg|vomit", low):
        goal = "longevity"
    elif re.search(r"work|school|job|study|studies|concentrat|grades|household", low):
        goal = "functioning"
    else:
        goal = "comfort"
    lines = [f"RATIONALE: The case centres on {len(facts)} reported facts; the intent and goal follow from "
             f"what the patient struggles with most.", "VITAL FACTS:"]
    lines += [f"- {v}" for v in vitals] or ["- NONE"]
    lines.append("FACTS:")
    lines += [f"- {f}" for f in facts]
    lines += [f"INTENT: {intent}", f"GOAL: {goal}"]
    return "\n".join(lines)


def _first_message(prompt: str, rng: random.Random) -> str:
    facts = _numbered_items(_block(prompt, "facts"))
    intent = _block(prompt, "intent")
    trait, literacy = _persona(prompt)
    chosen = [1] if facts else []
    if len(facts) > 1 and rng.random() < 0.75:
        chosen.append(rng.randint(2, min(len(facts), 5)))
    greeting = rng.choice(["Hi.", "Hello.", "Hi there."])
    core = " ".join(facts[i - 1] for i in chosen)
    message = _styled(rng, trait, literacy, f"{core} {intent}", opener=False)
    return "\n".join([
        f"REASONING: Facts {', '.join(map(str, chosen)) or 'none'} explain best why I am reaching out.",
        f"FACTS USED: {', '.join(map(str, chosen))}",
        f"MESSAGE: {greeting} {message}",
    ])


_OPEN_INVITATION = re.compile(
    r"in your own words|going on|worries you|on your mind|tell me more|what brings you|share whatever|"
    r"how are you coping", re.I)


def _fact_selection(prompt: str, rng: random.Random) -> str:
    question = _block(prompt, "question")
    facts = _numbered_items(_block(prompt, "facts"))
    qwords = content_words(question)
    scored = []
    for number, fact in enumerate(facts, 1):
        overlap = len(qwords & content_words(fact))
        if overlap:
            scored.append((overlap, rng.random(), number))
    if not scored and facts and _OPEN_INVITATION.search(question):
        # An open invitation ("what has been going on?") is answered with any relevant facts.
        scored = [(1, rng.random(), number) for number in rng.sample(range(1, len(facts) + 1), min(2, len(facts)))]
    if not scored:
        return "REASONING: None of the facts answers this message.\nFACTS: NO MATCH"
    scored.sort(reverse=True)
    chosen = sorted(number for _, _, number in scored[: rng.choice([1, 2, 3])])
    return (f"REASONING: These facts share the topic of the question.\n"
            f"FACTS: {', '.join(map(str, chosen))}")


def _patient_reply(prompt: str, rng: random.Random) -> str:
    facts = _numbered_items(_block(prompt, "facts")) or [_block(prompt, "facts")]
    question = _block(prompt, "question")
    trait, literacy = _persona(prompt)
    stage = int(_field(prompt, r"\(stage (\d) of 6\)", "2"))
    core = " ".join(facts)
    if stage >= 4 and "?" in question and re.search(r"\b(would|could|try|shall|how about|willing)\b", question, re.I):
        core = f"Yes, I think I could try that. {core}"
    elif stage == 3 or (stage >= 4 and "?" not in question):
        core = f"Okay, that makes sense to me. {core}"
    return f"ANSWER: {_styled(rng, trait, literacy, core)}"


_DECISION_Q = re.compile(
    r"would you (?:like|be|want|consider)|shall we|how do you feel|how are you feeling|does that sound|"
    r"are you (?:okay|open|willing|comfortable)|could you try|do you think you could|how would that|ready|"
    r"feel about|would it help|how does that", re.I)


def _no_match_reply(prompt: str, rng: random.Random) -> str:
    question = _block(prompt, "question")
    trait, literacy = _persona(prompt)
    # The answer opens with its polarity as a sentence of its own ("No." / "Yes."), as the method and
    # the reply grammar require; the persona's style follows it.
    if "?" not in question or _DECISION_Q.search(question):
        category = "EMOTION" if re.search(r"feel|emotion|scared|worr|cope|coping", question, re.I) else "DECISION"
        lead, core = rng.choice([("Yes.", "I'd like that."), ("Yes.", "That sounds right to me."),
                                 ("Yes!", "I think so.")])
        reason = "The message is about next steps or feelings, so I agree."
    else:
        category = "HISTORY"
        lead, core = rng.choice([("No.", "Not that I know of."), ("I'm not sure.", "I can't say either way."),
                                 ("No.", "I don't think so.")])
        reason = "The message asks about my history and my facts say nothing about it."
    answer = f"{lead} {_styled(rng, trait, literacy, core, opener=False)}"
    return f"REASONING: {reason}\nCATEGORY: {category}\nANSWER: {answer}"


_STYLE_SENTENCES = frozenset(
    sentence for phrases in (*_OPENERS.values(), *_CLOSERS.values()) for phrase in phrases
    for sentence in split_sentences(phrase)
)
_HEDGE_PREFIX = re.compile(
    "^(?:" + "|".join(re.escape(h) for hs in _LITERACY_HEDGE.values() for h in hs if h) + r")\s*", re.I)


def _sensemaker_facts(prompt: str, rng: random.Random) -> str:
    message = _block(prompt, "patient_message")
    known = _numbered_items(_block(prompt, "known_facts"))
    new: list[str] = []
    for sentence in split_sentences(message):
        sentence = _HEDGE_PREFIX.sub("", sentence).strip()
        if not sentence or sentence.endswith(("?", "!")) or sentence in _STYLE_SENTENCES:
            continue
        if len(content_words(sentence)) < 2 or not re.search(r"\b(?:I|I'm|I've|my)\b", sentence) or \
                re.match(r"^(?:yes|no|okay|ok|sure|of course)\b", sentence, re.IGNORECASE):
            continue  # small talk, agreement and persona colour are not facts about the patient
        fact = to_third_person(sentence)
        if not fact or any(similarity(fact, k) >= 0.6 for k in known + new):
            continue
        new.append(fact)
    if not new:
        return "NEW FACTS: NONE"
    return "NEW FACTS:\n" + "\n".join(f"# {f}" for f in new)


def _stage_decision(prompt: str, rng: random.Random) -> str:
    stage = int(_field(prompt, r"^Current stage: (\d)", "1"))
    turns = int(_field(prompt, r"\((\d+) of your messages so far", "0"))
    known = _numbered_items(_block(prompt, "known_facts"))
    message = _block(prompt, "patient_message")
    jitter = rng.randint(-2, 2)
    if stage == 1:
        confidence = 3 + 3 * turns + (1 if len(content_words(message)) > 12 else 0) + jitter
    elif stage == 2:
        confidence = 1 + turns + len(known) // 4 + jitter
    else:
        confidence = 3 + 2 * turns + (2 if re.search(r"\byes\b|makes sense|thank", message, re.I) else 0) + jitter
    confidence = max(1, min(10, confidence))
    decision = "MOVE_NEXT" if confidence >= 7 else "STAY"
    reasoning = (f"We are in stage {stage} after {turns} of my messages; I know {len(known)} facts about the "
                 f"patient, and their last message {'adds' if len(message) > 80 else 'adds little'} detail. "
                 f"{'The aims of this stage are met.' if decision == 'MOVE_NEXT' else 'More time here is useful.'}")
    return f"REASONING: {reasoning}\nCONFIDENCE: {confidence}\nDECISION: {decision}"


_POOLS = {
    1: [
        "Thank you for reaching out; I'm glad you did. Could you tell me in your own words what has been going on?",
        "I'm sorry you're going through this. It sounds hard, and I'm here to listen and help you make sense of it.",
        "It takes courage to talk about this, and I want you to know I'm on your side. What worries you most?",
        "You're not alone in this. Take your time and share whatever feels comfortable.",
        "Thank you for trusting me with this. Before anything else, how are you coping today?",
    ],
    2: [
        "Has anyone in your family had similar difficulties or a mental health condition?",
        "Are you currently taking any medication, or using alcohol or other substances?",
        "Have you been through any stressful or upsetting events recently?",
        "Have you ever experienced something like this before?",
        "What are you hoping to get out of our conversation today?",
        "How has this been affecting your work, studies or relationships?",
    ],
    4: [
        "Would you be open to setting one small, realistic goal for this week?",
        "Which of these changes feels most doable for you right now?",
        "It can help to involve someone you trust in these changes. Who could support you?",
    ],
    5: [
        "It's completely understandable to feel shaken by this. You've taken an important first step today.",
        "Whatever you're feeling right now is valid, and you don't have to face this alone.",
        "I can hear how much this has weighed on you. It's okay to feel worried, and it's okay to ask for help.",
        "You've shown real strength in talking about this so openly. How are you feeling about all of it now?",
        "Many people in your situation feel the same mix of relief and worry. Those feelings make sense.",
    ],
    6: [
        "Thank you for talking this through with me. I hope it helps, and you're welcome to come back "
        "with any questions.",
        "I'm glad we could talk today. Take care of yourself, and reach out again whenever you need to.",
        "Thank you for your openness today. I wish you well with the next steps, and I'm here if questions come up.",
    ],
}


def _fact_questions(known: list[str], rng: random.Random) -> list[str]:
    questions = []
    for fact in rng.sample(known, min(len(known), 3)):
        topic = to_second_person(fact)
        questions.append(rng.choice([
            f"You mentioned that {topic}. When did that start?",
            f"You mentioned that {topic}. How is that affecting your daily life?",
            f"Thank you for telling me that {topic}. Can you describe what that is like on a typical day?",
        ]))
    return questions


def _candidates(prompt: str, rng: random.Random) -> str:
    stage = int(_field(prompt, r"now in stage (\d) of 6", "1"))
    known = [k for k in _numbered_items(_block(prompt, "known_facts")) if not _VITAL.search(k)]
    context = " ".join(known) + " " + _block(prompt, "patient_message")
    condition = find_condition(context)
    if stage == 3:
        apology = _field(prompt, r"must be exactly this sentence and nothing else: (.+)$", "")
        if condition is None or len(known) < 2:
            messages = [apology] * 3
            reasoning = "I do not have enough information to name a diagnosis."
        else:
            diagnosis, _ = condition
            evidence = "; ".join(to_second_person(k) for k in rng.sample(known, min(2, len(known))))
            messages = [
                f"Based on what you've told me ({evidence}), the most likely explanation is {diagnosis}. "
                f"It is a common and treatable condition, but left alone it can get worse and affect your daily life.",
                f"Putting together what you described, I believe you are experiencing {diagnosis}. "
                f"Your symptoms and their duration make you quite likely to be affected, and it deserves attention.",
                f"My assessment is that this is {diagnosis}. It can be serious if it continues, "
                f"and given your history you are at real risk, but many people improve with the right support.",
            ]
            reasoning = f"The reported facts point to {diagnosis}."
    elif stage == 4:
        suggestions = (condition[1] if condition else []) + GENERAL_SUGGESTIONS
        pool = [f"One thing that may help is {s}. Would that fit into your routine?" for s in suggestions[:4]]
        pool += _POOLS[4]
        messages = rng.sample(pool, 3)
        reasoning = "Non-clinical steps that fit what the patient told me."
    elif stage == 2:
        pool = _fact_questions(known, rng) + _POOLS[2]
        messages = rng.sample(pool, 3)
        reasoning = f"I know {len(known)} facts; I need more history to narrow down the diagnosis."
    else:
        messages = rng.sample(_POOLS[stage], 3)
        reasoning = f"Messages suited to stage {stage}."
    previous = _numbered_items(_block(prompt, "your_previous_messages"))
    if stage in (1, 2, 4, 5) and previous:
        # Like real models, the simulated one sometimes comes back to what it already said; the
        # longer the conversation, the likelier. The redundancy check has to catch these.
        chance = min(0.4, 0.03 * len(previous))
        messages = [_restate(rng, rng.choice(previous)) if rng.random() < chance else m for m in messages]
    return "REASONING: " + reasoning + "\nMESSAGES:\n" + "\n".join(f"# {m}" for m in messages)


_RESTATE = ["As I mentioned,", "To come back to this:", "Just to repeat,"]


def _restate(rng: random.Random, message: str) -> str:
    return f"{rng.choice(_RESTATE)} {message[0].lower()}{message[1:]}"


def _redundancy(prompt: str, rng: random.Random) -> str:
    candidates = _numbered_items(_block(prompt, "candidates"))
    previous = _numbered_items(_block(prompt, "previous_messages"))
    lines = []
    for number, candidate in enumerate(candidates, 1):
        redundant = any(similarity(candidate, p) >= 0.5 for p in previous)
        lines.append(f"{number}: {'REDUNDANT' if redundant else 'NOT_REDUNDANT'}")
    return "\n".join(lines)


_HANDLERS = {
    "case_extraction": _case_extraction,
    "patient_first_message": _first_message,
    "patient_fact_selection": _fact_selection,
    "patient_reply": _patient_reply,
    "patient_no_match_reply": _no_match_reply,
    "sensemaker_fact_extraction": _sensemaker_facts,
    "stage_decision": _stage_decision,
    "sensemaker_candidates": _candidates,
    "redundancy_check": _redundancy,
}


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    """The MedAgent or judge prompt: the first message carrying our marker (later ones are retry notes)."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if isinstance(content, str) and (parse_marker(content) or is_judge_prompt(content)):
            return content
    return ""


# Handlers for prompts that are not MedAgent's (e.g. the safety probes): each gets (messages, model,
# rng) and returns its reply, or None when the prompt is not one of its own. Higher apps register theirs
# (register_reply_handler) so this module never imports them.
_EXTRA_HANDLERS: list = []


def register_reply_handler(handler) -> None:
    """Idempotent: the same handler is registered once."""
    with _lock:
        if handler not in _EXTRA_HANDLERS:
            _EXTRA_HANDLERS.append(handler)


def simulate_reply(messages: list[dict[str, Any]], model: str, seed: int | None = None) -> str:
    """The simulator's answer to a chat request. Deterministic in (model, messages, seed); the request's
    `seed` (OpenAI's parameter) varies it, as it varies a sampling model's reply."""
    prompt = _prompt_text(messages)
    marker = parse_marker(prompt) if prompt else None
    seed_material = model + "\n" + "\n".join(str(m.get("content")) for m in messages)
    if seed is not None:
        seed_material += f"\nseed={seed}"
    rng = random.Random(hashlib.sha256(seed_material.encode("utf-8")).hexdigest())
    if marker is None and is_judge_prompt(prompt):
        return simulate_judge_reply(prompt, rng)
    if marker is None:
        for handler in list(_EXTRA_HANDLERS):
            reply = handler(messages, model, rng)
            if reply is not None:
                return reply
    if marker is None or marker[1] not in _HANDLERS:
        # Not a MedAgent or judge prompt (e.g. a health check): answer plainly, still deterministic.
        return "This is the MedAgent offline simulator. It only answers MedAgent and judge prompts."
    return _HANDLERS[marker[1]](prompt, rng)


def estimate_tokens(text: str) -> int:
    # About four characters per token for English, the usual rule of thumb.
    return max(1, (len(text) + 3) // 4)


# ------------------------------------------------------------------------------------------------
# LiteLLM provider
# ------------------------------------------------------------------------------------------------
_lock = threading.Lock()


def _build_handler():
    from .litellm_setup import import_litellm

    import_litellm()
    from litellm import CustomLLM
    from litellm.types.utils import Usage

    class SimulatorLLM(CustomLLM):
        """`simulator/<name>`: answers MedAgent prompts offline, deterministically."""

        def _respond(self, model: str, messages: list, model_response, seed=None):
            full_model = model if is_simulated_model(model) else f"{PROVIDER}/{model}"
            text = simulate_reply(messages, full_model, seed)
            prompt_text = "\n".join(str(m.get("content") or "") for m in messages)
            model_response.choices[0].message.content = text
            model_response.choices[0].finish_reason = "stop"
            model_response.model = full_model
            model_response.created = int(time.time())
            model_response.system_fingerprint = SYSTEM_FINGERPRINT
            prompt_tokens, completion_tokens = estimate_tokens(prompt_text), estimate_tokens(text)
            model_response.usage = Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
            return model_response

        def completion(self, model, messages, *args, **kwargs):
            seed = (kwargs.get("optional_params") or {}).get("seed")
            return self._respond(model, messages, kwargs["model_response"], seed)

        async def acompletion(self, model, messages, *args, **kwargs):
            seed = (kwargs.get("optional_params") or {}).get("seed")
            return self._respond(model, messages, kwargs["model_response"], seed)

    return SimulatorLLM()


def register_simulator() -> None:
    """Make `simulator/...` models available to litellm.completion/acompletion. Idempotent."""
    from .litellm_setup import import_litellm

    litellm = import_litellm()
    with _lock:
        current = [p for p in litellm.custom_provider_map if p.get("provider") != PROVIDER]
        existing = [p for p in litellm.custom_provider_map if p.get("provider") == PROVIDER]
        if existing:
            handler = existing[0]["custom_handler"]
        else:
            handler = _build_handler()
        litellm.custom_provider_map = current + [{"provider": PROVIDER, "custom_handler": handler}]
        # litellm reads the map into its provider lists at call time only on some paths; do it now.
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def ensure_simulator() -> None:
    """Cheap check for the hot path: register only when the provider is missing from the map."""
    from .litellm_setup import import_litellm

    litellm = import_litellm()
    if not any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map) or \
            PROVIDER not in litellm._custom_providers:
        register_simulator()
