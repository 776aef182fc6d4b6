"""The quick schema test never calls a schema valid that jsonschema's metaschema rejects."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from compiler.jsonschema_lite import plainly_valid

META = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)

KEYWORDS = [
    "type", "properties", "required", "items", "enum", "const", "title", "description",
    "default", "minimum", "maximum", "exclusiveMinimum", "multipleOf", "minLength",
    "maxItems", "pattern", "format", "additionalProperties", "uniqueItems", "allOf", "anyOf",
    "not", "$defs", "$schema", "examples", "prefixItems", "deprecated", "requird", "$ref",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False),
    st.sampled_from(["string", "object", "strng", "integer", "([a-z", "^a+$", "x", ""]),
)


def _schemas() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.booleans(), st.just({})),
        lambda inner: st.dictionaries(
            st.sampled_from(KEYWORDS),
            st.one_of(
                scalars,
                inner,
                st.lists(st.one_of(scalars, inner), max_size=3),
                st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
            ),
            max_size=4,
        ),
        max_leaves=12,
    )


@settings(max_examples=400, deadline=None)
@given(_schemas())
def test_plainly_valid_implies_valid(schema: Any) -> None:
    if plainly_valid(schema):
        assert list(META.iter_errors(schema)) == []


def test_common_schemas_take_the_quick_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "description": "where"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14, "default": 3},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "mode": {"enum": ["fast", "slow"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert plainly_valid(schema)
    assert not plainly_valid({"type": "strng"})
    assert not plainly_valid({"required": "city"})
    assert not plainly_valid({"pattern": "([a-z"})
