"""The rules that extract facts, entities and relations with no model."""

from __future__ import annotations

import json

import anyio
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.llm.scripted import ScriptedModel
from runtime.memory.extract import (
    EXTRACTABLE,
    EXTRACTION_SCHEMA,
    MAX_ENTITIES,
    MAX_FACTS,
    MAX_RELATIONS,
    USER,
    Extraction,
    Fact,
    extraction_request,
    parse_extraction,
)
from runtime.memory.rules import rule_extract


def relations(found: Extraction) -> list[tuple[str, str, str]]:
    return [(r.source, r.relation, r.target) for r in found.relations]


def entities(found: Extraction) -> dict[str, str]:
    return {e.name: e.type for e in found.entities}


@pytest.mark.parametrize(
    ("text", "facts", "expected"),
    [
        (
            "I live in Lisbon. My dog is called Rex.",
            [("The user lives in Lisbon.", 0.8), ("The user's dog is called Rex.", 0.9)],
            [(USER, "lives_in", "Lisbon"), (USER, "dog", "Rex")],
        ),
        (
            "I'm a teacher and I work at the University of Lisbon.",
            [("The user is a teacher and the user works at the University of Lisbon.", 0.8)],
            [(USER, "is_a", "teacher"), (USER, "works_at", "University of Lisbon")],
        ),
        (
            "Call me Ana. My favourite colour is blue. I have a cat named Luna!",
            [
                ("The user's name is Ana.", 0.9),
                ("The user's favourite colour is blue.", 0.7),
                ("The user has a cat named Luna.", 0.7),
            ],
            [(USER, "name", "Ana"), (USER, "favourite_colour", "blue"), (USER, "cat", "Luna")],
        ),
        (
            "I was born in Porto and I moved to Faro in 2020. My name is Ana Silva.",
            [
                ("The user was born in Porto and the user moved to Faro in 2020.", 0.8),
                ("The user's name is Ana Silva.", 0.9),
            ],
            [(USER, "born_in", "Porto"), (USER, "moved_to", "Faro"), (USER, "name", "Ana Silva")],
        ),
        (
            "I love sushi. I don't like olives. I really enjoy long walks.",
            [
                ("The user loves sushi.", 0.7),
                ("The user doesn't like olives.", 0.7),
                ("The user really enjoys long walks.", 0.7),
            ],
            [(USER, "loves", "sushi"), (USER, "enjoys", "long walks")],
        ),
    ],
)
def test_first_person_sentences_are_facts_and_relations(
    text: str, facts: list[tuple[str, float]], expected: list[tuple[str, str, str]]
) -> None:
    found = rule_extract(text)
    assert [(f.text, f.importance) for f in found.facts] == facts
    assert relations(found) == expected
    assert entities(found)[USER] == "person"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ana's brother is Tom.", [("Ana", "brother", "Tom")]),
        (
            "Ana lives in Porto and works at Acme Corp.",
            [("Ana", "lives_in", "Porto"), ("Ana", "works_at", "Acme Corp")],
        ),
        (
            "The Eiffel Tower is in Paris. Paris is the capital of France.",
            [("Eiffel Tower", "is_in", "Paris"), ("Paris", "capital_of", "France")],
        ),
        ("Marie Curie was born in Warsaw.", [("Marie Curie", "born_in", "Warsaw")]),
        ("Lisbon is a beautiful city.", [("Lisbon", "is_a", "beautiful city")]),
        ("Tom is married to Ana, who works for Google.", [("Tom", "married_to", "Ana")]),
        (
            "Bob speaks Portuguese and likes jazz.",
            [("Bob", "speaks", "Portuguese"), ("Bob", "likes", "jazz")],
        ),
        ("The friend of Ana lives in Porto.", []),
        ("Cities like Paris are nice.", []),
        ("It is raining in Lisbon.", []),
        ("Ana is not from Porto.", []),
        ("Where does Ana live? Does Tom work at Acme?", []),
    ],
)
def test_third_person_relations(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = rule_extract(text)
    assert relations(found) == expected
    assert found.facts == ()  # nothing in the first person


def test_capitalised_names_are_entities_typed_by_their_relations() -> None:
    found = rule_extract(
        "Yesterday I met Leonardo da Vinci at the Bank of America in New York City. "
        "Ana lives in Porto and works at IBM. Where is the Eiffel Tower?"
    )
    assert entities(found) == {
        "Leonardo da Vinci": "thing",
        "Bank of America": "thing",
        "New York City": "thing",
        "Porto": "place",
        "IBM": "organization",
        "Eiffel Tower": "thing",
        "Ana": "person",
    }
    # a lone capitalised first word is not trusted as a name
    assert entities(rule_extract("Remember the milk. Tomorrow is Friday.")) == {"Friday": "thing"}


def test_sentences_that_are_not_statements_are_not_facts() -> None:
    found = rule_extract(
        "Can you tell me my balance? Please remind me to call my mother. What is my name? "
        "I see. Thanks!"
    )
    assert found.facts == ()
    assert found.relations == ()


def test_facts_are_kept_verbatim_when_no_safe_rewrite_is_known() -> None:
    (fact,) = rule_extract("I think I left my keys at home.").facts
    assert fact == Fact(text="The user thinks the user left their keys at home.", importance=0.5)
    (fact,) = rule_extract("I reckon my team wins").facts
    assert fact.text == "I reckon my team wins."  # "reckon" is not in the tables
    (fact,) = rule_extract("we adopted a puppy last week, my kids love it").facts
    assert fact.text == "We adopted a puppy last week, my kids love it."
    (fact,) = rule_extract("Also, my sister and I love Porto.").facts
    assert fact.text == "Also, my sister and I love Porto."


def test_rules_are_deterministic_and_capped() -> None:
    text = " ".join(f"I like Thing{i}. Person{i} lives in City{i}." for i in range(80))
    first, second = rule_extract(text), rule_extract(text)
    assert first == second
    assert len(first.facts) == MAX_FACTS
    assert len(first.entities) == MAX_ENTITIES
    assert len(first.relations) == MAX_RELATIONS
    assert parse_extraction(json.dumps(first.as_json())) == first


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_rules_never_raise_and_always_round_trip(text: str) -> None:
    found = rule_extract(text)
    assert rule_extract(text) == found
    jsonschema.validate(found.as_json(), EXTRACTION_SCHEMA)
    assert parse_extraction(json.dumps(found.as_json())) == found


def test_the_scripted_model_answers_extraction_with_the_rules() -> None:
    text = "I live in Lisbon. Ana works at Acme."
    request = extraction_request(text, agent="a", task=None, run_id="r", what=EXTRACTABLE)
    model = ScriptedModel(path="script.yaml", turns={})
    reply = anyio.run(model.complete, request)
    assert parse_extraction(reply.text) == rule_extract(text)
