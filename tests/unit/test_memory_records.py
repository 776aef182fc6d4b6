"""Namespaces, records and scoring: the plain data every memory store shares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.memory.records import Memory, Namespace, normalise_name
from runtime.memory.scoring import Weights, rank, recency

DAY = 86_400.0


@given(
    policy=st.text(min_size=1, max_size=20),
    tenant=st.text(max_size=20),
    owner=st.text(max_size=20),
    scope=st.sampled_from(["agent", "user", "session", "crew"]),
)
def test_a_namespace_key_round_trips_and_no_part_can_forge_another(
    policy: str, tenant: str, owner: str, scope: str
) -> None:
    ns = Namespace(policy=policy, tenant=tenant, scope=scope, owner=owner)  # type: ignore[arg-type]
    assert Namespace.parse(ns.key) == ns
    assert ns.key.count("/") == 2 and ns.key.count(":") == 1


def test_a_tenant_named_like_a_path_stays_one_tenant() -> None:
    evil = Namespace(policy="p", tenant="alice/agent:x", scope="agent", owner="a")
    alice = Namespace(policy="p", tenant="alice", scope="agent", owner="x")
    assert evil.key != alice.key
    assert not evil.key.startswith(alice.key.rsplit("/", 1)[0] + "/")
    assert evil.slug != alice.slug and evil.slug.startswith("kiln-")


def test_parse_refuses_what_is_not_a_key() -> None:
    for bad in ("p/t", "p/t/nope:x", "a/b/c/d:e"):
        with pytest.raises(ValueError, match="not a memory namespace key"):
            Namespace.parse(bad)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The Eiffel Tower", "eiffel-tower"),
        ("Lisbon.", "  lisbon "),
        ("New_York", "new york"),
        ("An Apple", "apple"),
    ],
)
def test_entities_merge_on_normalised_names(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)


def test_recency_halves_every_half_life() -> None:
    now = 1_000 * DAY
    assert recency(now, now, 30) == 1.0
    assert recency(now - 30 * DAY, now, 30) == pytest.approx(0.5)
    assert recency(now - 60 * DAY, now, 30) == pytest.approx(0.25)
    assert recency(now + DAY, now, 30) == 1.0  # a clock skew never scores above 1


def _memory(text: str, *, age_days: float, importance: float, now: float) -> Memory:
    return Memory(
        id=text, text=text, namespace="p/t/agent:a", created_at=now - age_days * DAY,
        importance=importance,
    )  # fmt: skip


def test_rank_combines_relevance_recency_and_importance_with_the_policy_weights() -> None:
    now = 1_000 * DAY
    old_exact = _memory("old exact", age_days=90, importance=0.5, now=now)
    new_close = _memory("new close", age_days=0, importance=0.5, now=now)
    hits = [(old_exact, 0.9), (new_close, 0.7)]
    # CrewAI's weights: recency lifts the newer memory above the older, better match
    ranked, _ = rank(hits, weights=Weights(), now=now, top_k=5)
    assert [s.memory.id for s in ranked] == ["new close", "old exact"]
    # relevance counts relative to the best candidate's (0.9)
    assert ranked[0].score == pytest.approx(0.5 * 0.7 / 0.9 + 0.3 * 1.0 + 0.2 * 0.5)
    # relevance alone: the better match wins
    only = Weights(relevance=1, recency=0, importance=0)
    ranked, _ = rank(hits, weights=only, now=now, top_k=5)
    assert [s.memory.id for s in ranked] == ["old exact", "new close"]
    assert ranked[0].score == pytest.approx(1.0) and ranked[0].relevance == 0.9


def test_min_score_filters_on_relevance_and_counts_what_it_dropped() -> None:
    now = 1_000 * DAY
    hits = [
        (_memory("a", age_days=0, importance=1.0, now=now), 0.1),
        (_memory("b", age_days=400, importance=0.0, now=now), 0.6),
    ]
    ranked, under = rank(hits, weights=Weights(), now=now, top_k=5, min_score=0.5)
    assert [s.memory.id for s in ranked] == ["b"] and under == 1
    assert "relevance 0.60" in ranked[0].why and "400 days old" in ranked[0].why


def test_rank_keeps_top_k_and_orders_ties_by_id() -> None:
    now = 1_000 * DAY
    hits = [(_memory(name, age_days=1, importance=0.5, now=now), 0.5) for name in "dcba"]
    ranked, _ = rank(hits, weights=Weights(), now=now, top_k=2)
    assert [s.memory.id for s in ranked] == ["a", "b"]


def test_zero_weights_fall_back_to_relevance() -> None:
    now = 1_000 * DAY
    weights = Weights(relevance=0, recency=0, importance=0)
    ranked, _ = rank([(_memory("a", age_days=1, importance=1, now=now), 0.42)],
                     weights=weights, now=now, top_k=1)  # fmt: skip
    assert ranked[0].score == pytest.approx(0.42)


def test_another_agents_turns_are_never_taken_for_the_readers_own() -> None:
    from runtime.memory.calls import turn_message
    from runtime.memory.records import Turn

    asked = Turn(role="user", content="Report on floods.", agent="reporter")
    answered = Turn(role="assistant", content="The harbour flooded.", agent="reporter")
    assert turn_message(answered, reader="reporter") == {
        "role": "assistant",
        "content": "The harbour flooded.",
    }
    seen = turn_message(answered, reader="editor")
    assert seen["role"] == "user" and seen["content"].startswith("(Earlier, reporter answered:)")
    assert turn_message(asked, reader="editor")["content"].startswith("(Earlier, reporter was")
    summary = turn_message(Turn(role="summary", content="- floods"), reader="editor")
    assert summary["role"] == "user" and "Summary of our earlier conversation" in summary["content"]
