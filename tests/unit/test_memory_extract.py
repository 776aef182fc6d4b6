"""Extraction for memory: the request a model gets and reading its reply."""

from __future__ import annotations

import json
import math
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.memory.extract import (
    EXTRACTABLE,
    EXTRACTION_SCHEMA,
    MAX_ENTITIES,
    MAX_FACTS,
    MAX_RELATIONS,
    Extraction,
    Fact,
    extraction_from_json,
    extraction_request,
    parse_extraction,
)
from runtime.memory.records import Entity, Relation
from runtime.memory.rules import rule_extract

# --- the schema and the request ------------------------------------------------------------


def objects(schema: Any) -> list[dict[str, Any]]:
    """Every object schema inside ``schema``."""
    if isinstance(schema, dict):
        found = [schema] if schema.get("type") == "object" else []
        return found + [o for value in schema.values() for o in objects(value)]
    if isinstance(schema, list):
        return [o for value in schema for o in objects(value)]
    return []


def test_the_schema_is_plain_enough_for_grammars() -> None:
    jsonschema.Draft202012Validator.check_schema(EXTRACTION_SCHEMA)
    text = json.dumps(EXTRACTION_SCHEMA)
    for word in ("minimum", "maximum", "anyOf", "oneOf", "allOf", "$ref", "pattern", "format"):
        assert word not in text
    assert len(objects(EXTRACTION_SCHEMA)) == 4
    for schema in objects(EXTRACTION_SCHEMA):
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])


def test_an_extraction_as_json_follows_the_schema() -> None:
    found = rule_extract("I live in Lisbon. My dog is called Rex. Ana works at Acme.")
    jsonschema.validate(found.as_json(), EXTRACTION_SCHEMA)
    jsonschema.validate(Extraction().as_json(), EXTRACTION_SCHEMA)


def test_the_request_asks_for_what_is_wanted_only() -> None:
    text = "I live in Lisbon.\nAna works at Acme."
    request = extraction_request(
        text, agent="helper", task="t1", run_id="r1", what=frozenset({"entities", "relations"})
    )
    assert request.purpose == "extract"
    assert (request.agent, request.task, request.run_id) == ("helper", "t1", "r1")
    assert request.messages[-1] == {"role": "user", "content": text}
    assert request.messages[0]["role"] == "system"
    schema = request.response_schema
    assert schema is not None
    assert list(schema["properties"]) == ["entities", "relations"]
    assert schema["required"] == ["entities", "relations"]
    jsonschema.Draft202012Validator.check_schema(schema)
    prompt = request.messages[0]["content"]
    assert '"entities"' in prompt and '"relations"' in prompt and '"facts"' not in prompt
    everything = extraction_request(text, agent="a", task=None, run_id="r", what=EXTRACTABLE)
    assert everything.response_schema == EXTRACTION_SCHEMA
    assert everything.task is None


@pytest.mark.parametrize("what", [frozenset(), frozenset({"facts", "memories"})])
def test_the_request_refuses_unknown_kinds(what: frozenset[str]) -> None:
    with pytest.raises(ValueError, match="cannot extract"):
        extraction_request("x", agent="a", task=None, run_id="r", what=what)


def test_only_keeps_the_kinds_asked_for() -> None:
    found = rule_extract("I live in Lisbon.")
    assert found.facts and found.entities and found.relations
    assert found.only({"facts"}) == Extraction(facts=found.facts)
    assert found.only(EXTRACTABLE) == found


# --- reading replies -----------------------------------------------------------------------

GOOD = {
    "facts": [{"text": "The user lives in Lisbon.", "importance": 0.8}],
    "entities": [{"name": "Lisbon", "type": "Place"}, {"name": "User", "type": "person"}],
    "relations": [{"source": "User", "relation": "Lives In", "target": "Lisbon"}],
}
PARSED = Extraction(
    facts=(Fact(text="The user lives in Lisbon.", importance=0.8),),
    entities=(Entity(name="Lisbon", type="place"), Entity(name="User", type="person")),
    relations=(Relation(source="User", relation="lives_in", target="Lisbon"),),
)


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps(GOOD),
        json.dumps(GOOD, indent=2),
        f"```json\n{json.dumps(GOOD)}\n```",
        f"Sure! Here is the JSON: {json.dumps(GOOD)} Hope that helps {{:}}",
    ],
)
def test_a_reply_is_read_wherever_its_json_is(reply: str) -> None:
    assert parse_extraction(reply) == PARSED


def test_a_decoded_reply_is_read_the_same_way() -> None:
    assert extraction_from_json(GOOD) == PARSED
    assert extraction_from_json({}) == Extraction()


@pytest.mark.parametrize(
    "reply", ["", "no json here", "[1, 2]", '"text"', "{", "{'single': 'quotes'}", "null"]
)
def test_junk_gives_an_empty_extraction(reply: str) -> None:
    assert parse_extraction(reply) == Extraction()


def test_a_reply_cut_off_keeps_its_complete_entries() -> None:
    whole = json.dumps(GOOD)
    cut = whole[: whole.index('"relations"') + 30]
    assert parse_extraction(cut) == Extraction(facts=PARSED.facts, entities=PARSED.entities)
    cut = '{"facts": [{"text": "a fact", "importance": 0.4}, {"text": "half'
    assert parse_extraction(cut) == Extraction(facts=(Fact(text="a fact", importance=0.4),))
    assert parse_extraction('{"facts": [{"text": "a \\" } ]", "importance": 1}, {"te') == (
        Extraction(facts=(Fact(text='a " } ]', importance=1.0),))
    )


def test_entries_of_the_wrong_shape_are_dropped_and_values_tidied() -> None:
    reply = {
        "facts": [
            {"text": "  spaced \n out  ", "importance": 7},
            {"text": "negative", "importance": -1},
            {"text": "as text", "importance": "0.25"},
            {"text": "missing"},
            {"text": "a bool", "importance": True},
            {"text": "words", "importance": "high"},
            {"text": "", "importance": 1},
            {"importance": 1},
            "a bare string",
            {"text": "SPACED OUT", "importance": 0.1},
            42,
        ],
        "entities": [
            {"name": "The Tower", "type": ""},
            {"name": "tower", "type": "Landmark"},
            {"name": "--", "type": "x"},
            {"name": None},
            "Bare Name",
            [],
        ],
        "relations": [
            {"source": "A", "relation": "is part of", "target": "B"},
            {"source": "a", "relation": "IS_PART_OF", "target": "b."},
            {"source": "A", "relation": "!!", "target": "B"},
            {"source": "", "relation": "x", "target": "B"},
            {"source": "A", "target": "B"},
            {"source": 1, "relation": "x", "target": "B"},
        ],
        "extra": "ignored",
    }
    found = parse_extraction(json.dumps(reply))
    assert found.facts == (
        Fact(text="spaced out", importance=1.0),
        Fact(text="negative", importance=0.0),
        Fact(text="as text", importance=0.25),
        Fact(text="missing", importance=0.5),
        Fact(text="a bool", importance=0.5),
        Fact(text="words", importance=0.5),
        Fact(text="a bare string", importance=0.5),
    )
    assert found.entities == (
        Entity(name="The Tower", type="landmark"),
        Entity(name="Bare Name", type="thing"),
    )
    assert found.relations == (Relation(source="A", relation="is_part_of", target="B"),)


def test_counts_are_capped() -> None:
    reply = {
        "facts": [{"text": f"fact {i}", "importance": 0.5} for i in range(100)],
        "entities": [{"name": f"E{i}", "type": "thing"} for i in range(100)],
        "relations": [{"source": f"E{i}", "relation": "r", "target": "x"} for i in range(100)],
    }
    found = parse_extraction(json.dumps(reply))
    assert (len(found.facts), len(found.entities), len(found.relations)) == (
        MAX_FACTS,
        MAX_ENTITIES,
        MAX_RELATIONS,
    )
    assert found.facts[-1].text == f"fact {MAX_FACTS - 1}"


def test_not_a_number_is_the_default_importance() -> None:
    (fact,) = parse_extraction('{"facts": [{"text": "x", "importance": NaN}]}').facts
    assert fact.importance == 0.5 and not math.isnan(fact.importance)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_reading_never_raises_on_any_text(text: str) -> None:
    assert isinstance(parse_extraction(text), Extraction)


@given(st.dictionaries(st.sampled_from(["facts", "entities", "relations", "x"]), json_values))
@settings(max_examples=200, deadline=None)
def test_reading_never_raises_on_any_json(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    found = parse_extraction(text)
    assert all(0.0 <= f.importance <= 1.0 for f in found.facts)
    assert all(e.name.strip() for e in found.entities)
    # and whatever was read can be cut anywhere without an exception
    for end in range(0, len(text), max(1, len(text) // 7)):
        parse_extraction(text[:end])
