"""The JSON Schema files in specs/schema/ are current, valid, and agree with the models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from specs import KINDS
from specs.schema_gen import SCHEMA_DIR, check, generate

VALID: dict[str, list[dict[str, Any]]] = {
    "agent.json": [
        {"apiVersion": "kiln/v1", "kind": "Agent", "metadata": {"name": "minimal"}},
        {
            "apiVersion": "kiln/v1",
            "kind": "Agent",
            "metadata": {"name": "researcher", "labels": {"team": "research"}},
            "spec": {
                "model": "local/smollm2-135m",
                "fallbacks": ["openai/gpt-4o-mini"],
                "instructions": "You research {{ inputs.topic }} carefully.",
                "inputs": {"topic": {"type": "string"}},
                "tools": ["calculator", "http-get"],
                "memory": "research-memory",
                "strategy": "react",
                "limits": {"max_iterations": 15, "timeout_s": 300, "max_tokens": 20000},
                "output_schema": {"type": "object", "properties": {"summary": {"type": "string"}}},
            },
        },
    ],
    "tool.json": [
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": "calculator"},
            "spec": {
                "description": "Evaluate an arithmetic expression.",
                "input_schema": {"type": "object", "properties": {"expr": {"type": "string"}}},
                "executor": {"type": "python", "code": "def run(expr):\n    return expr\n"},
                "sandbox": {"memory_mb": 128, "timeout_s": 5},
                "cache": {"ttl_s": 60},
            },
        },
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": "http-get"},
            "spec": {
                "description": "Fetch a URL.",
                "executor": {"type": "http", "url": "{{ input.url }}", "allow_hosts": ["x.org"]},
                "requires_approval": True,
            },
        },
    ],
    "memory_policy.json": [
        {"apiVersion": "kiln/v1", "kind": "MemoryPolicy", "metadata": {"name": "defaults"}},
        {
            "apiVersion": "kiln/v1",
            "kind": "MemoryPolicy",
            "metadata": {"name": "research-memory"},
            "spec": {
                "scope": "user",
                "short_term": {"backend": "inprocess", "max_messages": 20},
                "vector": {"backend": "chroma", "path": ".kiln/chroma"},
                "retrieval": {"top_k": 4, "weights": {"relevance": 1.0}},
            },
        },
    ],
    "crew.json": [
        {
            "apiVersion": "kiln/v1",
            "kind": "Crew",
            "metadata": {"name": "research-crew"},
            "spec": {
                "inputs": {"topic": {"type": "string"}},
                "process": "sequential",
                "tasks": [
                    {"name": "research", "agent": "researcher", "prompt": "{{ inputs.topic }}"},
                    {
                        "name": "write",
                        "agent": "writer",
                        "prompt": "Write up {{ tasks.research.output }}",
                        "depends_on": ["research"],
                    },
                ],
                "output": "write",
            },
        },
    ],
    "model.json": [
        {
            "apiVersion": "kiln/v1",
            "kind": "Model",
            "metadata": {"name": "fast"},
            "spec": {
                "model": "openai/gpt-4o-mini",
                "fallbacks": ["anthropic/claude-3-5-haiku-latest"],
                "params": {"max_tokens": 512, "temperature": 0.2},
            },
        },
    ],
}
KIND_FILES = sorted(VALID)
DOCUMENTS = [(name, doc) for name in KIND_FILES for doc in VALID[name]]


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(generate()[name]))


def _errors(name: str, doc: dict[str, Any]) -> list[str]:
    return [e.message for e in _validator(name).iter_errors(doc)]


def test_committed_schema_files_are_current() -> None:
    stale = check()
    assert not stale, f"stale files in {SCHEMA_DIR}: {', '.join(stale)}; run `make schema`"


def test_every_kind_has_a_schema_file() -> None:
    assert KIND_FILES == sorted(set(generate()) - {"kiln.json"})
    assert len(KIND_FILES) == len(KINDS)


@pytest.mark.parametrize("name", sorted(generate()))
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads(generate()[name])
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://agentkiln.dev/schema/v1/{name}"
    assert schema["title"]


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS)
def test_valid_documents_pass_their_schema_and_the_any_kind_schema(
    name: str, doc: dict[str, Any]
) -> None:
    KINDS[doc["kind"]].model_validate(doc)  # the fixture itself must be a valid spec
    assert _errors(name, doc) == []
    assert _errors("kiln.json", doc) == []


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS)
def test_unknown_key_under_spec_is_rejected(name: str, doc: dict[str, Any]) -> None:
    bad = {**doc, "spec": {**doc.get("spec", {}), "no_such_key": 1}}
    assert any("no_such_key" in message for message in _errors(name, bad))
    assert _errors("kiln.json", bad)


@pytest.mark.parametrize("name", KIND_FILES)
def test_document_of_another_kind_is_rejected(name: str) -> None:
    others = [doc for other, docs in VALID.items() if other != name for doc in docs]
    for doc in others:
        assert _errors(name, doc), f"{name} accepted a {doc['kind']}"


def test_any_kind_schema_rejects_an_unknown_kind() -> None:
    doc = {"apiVersion": "kiln/v1", "kind": "Agnet", "metadata": {"name": "x"}}
    assert _errors("kiln.json", doc)
