"""The simulator's sensemaker turns case facts about "the patient" into second-person sentences."""
import pytest

from generation.medagent.simulator import to_second_person


@pytest.mark.parametrize(("fact", "said"), [
    ("The patient uses no drugs and takes no medication.", "you use no drugs and take no medication"),
    ("The patient drinks two beers before social events but otherwise rarely drinks.",
     "you drink two beers before social events but otherwise rarely drink"),
    ("The patient is a teacher and has lost interest in the choir.",
     "you are a teacher and have lost interest in the choir"),
    # Another subject's verbs stay as they are.
    ("The patient has two sisters and a brother.", "you have two sisters and a brother"),
    ("The patient reports that her mother has diabetes and takes insulin.",
     "you report that her mother has diabetes and takes insulin"),
    ("Sleep is poor and the patient wakes at 4 am.", "sleep is poor and you wake at 4 am"),
])
def test_facts_become_second_person(fact, said):
    assert to_second_person(fact) == said
