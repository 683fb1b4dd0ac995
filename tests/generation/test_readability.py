"""SMOG grade (McLaughlin 1969): grade = 1.0430 * sqrt(polysyllables * 30 / sentences) + 3.1291.

Expected grades below are computed by hand from that formula; the syllable counter is checked
against dictionary syllabifications (Merriam-Webster style) of words typical of these dialogues.
"""
import math

import pytest

from generation.readability import (
    SmogCounts,
    count_syllables,
    smog_counts,
    smog_grade,
    smog_grade_texts,
    split_sentences,
)


def formula(polysyllables, sentences):
    return 1.0430 * math.sqrt(polysyllables * 30 / sentences) + 3.1291


def test_no_polysyllables_gives_the_intercept():
    assert smog_counts("The cat sat on the mat. The dog ran.") == SmogCounts(2, 9, 0)
    assert smog_grade("The cat sat on the mat. The dog ran.") == pytest.approx(3.1291)


def test_hand_computed_example():
    # anxiety (4), exercise (3), everybody (4) are polysyllables; common (2) is not.
    text = "Anxiety is common. Exercise helps everybody."
    assert smog_counts(text) == SmogCounts(2, 6, 3)
    assert smog_grade(text) == pytest.approx(formula(3, 2)) == pytest.approx(10.1258, abs=1e-4)


def test_thirty_sentence_sample_matches_the_calibration_case():
    # One polysyllable in each of 30 sentences: 1.0430 * sqrt(30) + 3.1291 = 8.8419.
    text = " ".join(["Medication helps."] * 30)
    assert smog_grade(text) == pytest.approx(8.8419, abs=1e-4)


def test_a_conversation_is_pooled_not_averaged():
    texts = ["Anxiety is common.", "Exercise helps everybody.", "", None]
    pooled = smog_grade_texts(texts)
    assert pooled == pytest.approx(formula(3, 2))
    mean_of_parts = (smog_grade(texts[0]) + smog_grade(texts[1])) / 2
    assert pooled != pytest.approx(mean_of_parts)


@pytest.mark.parametrize("text", ["", "   ", None, "123 456 !!", "\n\n"])
def test_no_sentence_gives_none(text):
    assert smog_grade(text) is None
    assert smog_grade_texts([text]) is None


def test_no_texts_gives_none():
    assert smog_grade_texts([]) is None


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith saw me at 3 p.m. today. It went well.", 2),
    ("I lost 2.5 kg. That is a lot.", 2),
    ("Really?! Yes... fine.", 3),
    ("Try these:\n- walking daily\n- regular meals", 3),
    ("no punctuation at all", 1),
    ('She said "stop." Then she left.', 2),
    ("We can try e.g. a walk. Or rest.", 2),
])
def test_sentence_splitting(text, expected):
    assert len(split_sentences(text)) == expected


def test_acronyms_are_read_letter_by_letter():
    assert count_syllables("PTSD") == 4 and count_syllables("OCD") == 3 and count_syllables("ADHD") == 4
    assert count_syllables("WHO") == 5  # double-u has three syllables
    assert count_syllables("well-being") == 3 and count_syllables("don't") == 1


# Dictionary syllable counts of words common in these conversations. This list also guided the
# counter's rules and exceptions, so it is a regression check, not an accuracy estimate.
TUNING_WORDS = {
    "sleep": 1, "stressed": 1, "breathe": 1, "changes": 2, "people": 2, "worried": 2, "lately": 2,
    "something": 2, "routine": 2, "quiet": 2, "careful": 2, "urges": 2, "depression": 3, "exercise": 3,
    "therapy": 3, "serious": 3, "period": 3, "idea": 3, "behavior": 3, "reaction": 3, "genuine": 3,
    "completely": 3, "anxiety": 4, "diagnosis": 4, "medication": 4, "experience": 4, "realistic": 4,
    "agreeable": 4, "comfortable": 4, "psychological": 5, "schizophrenia": 5, "responsibility": 6,
}

# Held out: never used to tune the counter. Its accuracy is what the module docstring promises.
HELD_OUT = {
    "appointment": 3, "weekly": 2, "morning": 2, "schedule": 2, "journal": 2, "reduce": 2, "caffeine": 2,
    "consistent": 3, "bedtime": 2, "screen": 1, "evidence": 3, "treatable": 3, "affect": 2, "affecting": 3,
    "daily": 2, "moments": 2, "effort": 2, "gently": 2, "explore": 2, "explain": 2, "approach": 2,
    "improve": 2, "improvement": 3, "practice": 2, "practical": 3, "regular": 3, "regularly": 4,
    "activities": 4, "benefit": 3, "benefits": 3, "severity": 4, "susceptible": 4, "likelihood": 3,
    "consequences": 4, "effective": 3, "efficacy": 4, "therapist": 3, "cognitive": 3, "behavioral": 4,
    "mindfulness": 3, "meditation": 4, "relaxation": 4, "technique": 2, "techniques": 2, "manage": 2,
    "managing": 3, "management": 3, "worries": 2, "worrying": 3, "overwhelming": 4, "hopelessness": 3,
    "loneliness": 3, "isolated": 4, "isolation": 4, "connection": 3, "social": 2, "physician": 3,
    "prescribe": 2, "medical": 3, "history": 3, "symptoms": 2, "episode": 3, "episodes": 3, "recovery": 4,
    "recover": 3, "progress": 2, "pattern": 2, "patterns": 2, "trigger": 2, "triggers": 2, "thinking": 2,
    "feelings": 2, "emotions": 3, "appetite": 3, "concentrate": 3, "concentration": 4, "motivation": 4,
    "validate": 3, "valid": 2, "normal": 2, "entirely": 3, "understandable": 5, "brave": 1,
    "courageous": 3, "proud": 1, "hopeful": 2, "possible": 3, "impossible": 4, "terrified": 3,
    "frightening": 3, "nervousness": 3, "restless": 2, "tremor": 2, "racing": 2, "sweating": 2,
    "shaking": 2, "dizzy": 2, "headache": 2, "tiredness": 2, "sleepless": 2, "nightmares": 2,
    "flashbacks": 2, "avoidance": 3, "avoiding": 3, "compulsions": 3, "obsessions": 3, "intrusive": 3,
    "ritual": 3, "rituals": 3, "contamination": 5, "binge": 1, "purging": 2, "weight": 1, "eating": 2,
    "drinking": 2, "sober": 2, "craving": 2, "cravings": 2, "withdrawal": 3, "dependence": 3,
    "tolerance": 3, "side": 1, "effects": 2, "akathisia": 5, "bipolar": 3, "manic": 2, "mania": 3,
    "euphoric": 3, "impulsive": 3, "hyperactivity": 6, "organised": 3, "organized": 3, "distracted": 3,
    "forgetful": 3, "deadline": 2, "psychosis": 3, "paranoid": 3, "hallucinations": 5, "delusions": 3,
    "voices": 2, "supportive": 3, "reliable": 4, "uncertain": 3, "comfort": 2, "longevity": 4,
    "functioning": 3, "literacy": 4, "personalised": 4, "interpretation": 5, "recommendation": 5,
}


def test_tuning_words_regression():
    assert {w: count_syllables(w) for w in TUNING_WORDS} == TUNING_WORDS


def test_held_out_accuracy():
    wrong = {w: (e, count_syllables(w)) for w, e in HELD_OUT.items() if count_syllables(w) != e}
    misclassified = {w: v for w, v in wrong.items() if (v[0] >= 3) != (v[1] >= 3)}
    # Measured: 144/150 exact, 148/150 on the polysyllable (>= 3) decision SMOG depends on;
    # the misses are likelihood, behavioral, technique(s), loneliness, courageous.
    assert len(HELD_OUT) == 150
    assert 1 - len(wrong) / len(HELD_OUT) >= 0.95, wrong
    assert 1 - len(misclassified) / len(HELD_OUT) >= 0.98, misclassified
