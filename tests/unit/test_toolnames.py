"""Tool names as model APIs accept them: always valid, deterministic, distinct."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from specs.toolnames import API_NAME, api_name, qualify

SPEC = st.from_regex(r"[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
#: what MCP servers send (SEP-986), and worse: a name we map must never break a request
REMOTE = st.one_of(
    st.from_regex(r"[A-Za-z0-9_./-]{1,128}", fullmatch=True),
    st.text(min_size=1, max_size=140),
)


def test_a_spec_name_is_its_own_api_name() -> None:
    assert api_name("calculator") == "calculator"
    assert api_name("http_get") == "http_get"


def test_simple_imports_read_as_spec_double_underscore_tool() -> None:
    assert api_name(qualify("time", "get_current_time")) == "time__get_current_time"
    assert api_name(qualify("pets", "getPet")) == "pets__getPet"


def test_lossy_names_get_a_hash_suffix() -> None:
    dotted = api_name(qualify("fs", "files.read"))
    assert dotted.startswith("fs__files_read-") and len(dotted) == len("fs__files_read-") + 8
    # the readable part alone would collide; the suffix keeps them apart
    assert dotted != api_name(qualify("fs", "files_read"))
    assert api_name(qualify("fs", "files/read")) != dotted
    long = api_name(qualify("server", "x" * 128))
    assert len(long) == 64 and API_NAME.match(long)


def test_a_double_underscore_in_the_remote_name_is_not_taken_for_the_separator() -> None:
    # "a.b__c" and "a__b.c" would both read "a__b__c"
    assert api_name(qualify("a", "b__c")) != api_name(qualify("a__b", "c"))


@settings(max_examples=400, deadline=None)
@given(SPEC, REMOTE)
def test_every_mapped_name_fits_the_api_pattern(spec: str, remote: str) -> None:
    name = api_name(qualify(spec, remote))
    assert API_NAME.match(name), name
    assert name == api_name(qualify(spec, remote))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(SPEC, REMOTE), min_size=2, max_size=30, unique=True))
def test_distinct_tools_get_distinct_names(tools: list[tuple[str, str]]) -> None:
    names = [api_name(qualify(spec, remote)) for spec, remote in tools]
    assert len(set(names)) == len(names)
