"""Templates read without Jinja give exactly what Jinja's parse gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.templates import ParsedTemplate, _simple, parse_with_jinja

names = st.sampled_from(["inputs", "tasks", "topic", "output", "x", "if", "true", "range", "a1"])
parts = st.one_of(
    names.map(lambda n: f".{n}"),
    st.integers(0, 12).map(lambda i: f"[{i}]"),
    st.sampled_from(["['k']", "['a b']", "[01]", "['x-y']"]),
)
expressions = st.builds(
    lambda root, rest, pad, tail: "{{" + pad + root + "".join(rest) + tail + pad + "}}",
    names,
    st.lists(parts, max_size=4),
    st.sampled_from(["", " ", "\n ", "\t"]),
    st.sampled_from(["", "", "", " | upper", "()", " + 1", "-"]),
)
text = st.sampled_from(["Hello ", "\n", "a } b ", "}} ", "{ x } ", "line\nline ", "{", ""])
templates = st.lists(st.one_of(text, expressions), min_size=1, max_size=6).map("".join)


@settings(max_examples=600, deadline=None)
@given(templates)
def test_fast_path_agrees_with_jinja(source: str) -> None:
    quick = _simple(source)
    if quick is None:
        return
    slow = parse_with_jinja(source)
    assert isinstance(slow, ParsedTemplate), (source, slow)
    assert quick.references == slow.references


def test_the_fast_path_is_taken_for_plain_references() -> None:
    quick = _simple("Research {{ inputs.topic }}\nusing {{ tasks.a.output.items[0]['k'] }}")
    assert quick is not None
    assert [r.path for r in quick.references] == [
        ("inputs", "topic"),
        ("tasks", "a", "output", "items", 0, "k"),
    ]
    assert [r.lineno for r in quick.references] == [1, 2]
    assert _simple("{{ inputs.topic | upper }}") is None
    assert _simple("{% if x %}{{ x }}{% endif %}") is None
