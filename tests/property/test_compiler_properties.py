"""Properties of the compiler over generated projects (strategies in ``kiln_strategies``).

- valid projects compile with no error;
- the plan's bytes and hashes depend on meaning only: not on YAML style, key order,
  comments, file layout, anchors or written-out defaults; and any leaf change shows;
- no input makes the compiler raise: mutated specs, random text, random bytes and random
  JSON documents give diagnostics with a catalogued code, a message and a position;
- the same input gives the same bytes, in one process and across hash seeds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.generate import generate_project
from compiler.diagnostics import CODES, render_text
from compiler.passes.emit import dumps
from compiler.pipeline import Compilation, compile_paths
from runtime.cli import main as kiln
from specs import KINDS
from specs.source import load_text
from tests.property.kiln_strategies import Spec, changed, leaves, projects
from tests.property.yaml_forms import (
    Files,
    Layout,
    canonical,
    layouts,
    render,
    with_defaults,
    write,
)

ROOT = Path(__file__).resolve().parents[2]
#: Examples per test are kept small so the suite stays fast; KILN_PROPERTY_SCALE=10 (say)
#: multiplies them all for a longer hunt.
SCALE = float(os.environ.get("KILN_PROPERTY_SCALE", "1"))


def examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


FAST = examples(40)
MANY = examples(75)
CHEAP = examples(100)


@contextlib.contextmanager
def project_dir(files: Files) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kiln-prop-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        write(root, files)
        yield root


def compile_files(files: Files) -> Compilation:
    with project_dir(files) as root:
        return compile_paths([root])


def errors(result: Compilation) -> str:
    return render_text(result.errors, result.files)


def hashes(result: Compilation) -> dict[str, str]:
    assert result.plan is not None, errors(result)
    return {key: spec["hash"] for key, spec in result.plan["specs"].items()}


def assert_well_formed(result: Compilation) -> None:
    for d in result.diagnostics:
        assert d.code in CODES, d
        assert d.message.strip(), d
        assert d.span.line >= 1 and d.span.col >= 1, d
    render_text(result.diagnostics, result.files)  # rendering never raises either


def run_cli(*argv: str) -> int:
    """``kiln *argv`` in this process; an internal error (exit 3) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = kiln(list(argv))
    assert code in (0, 1), f"kiln {' '.join(argv)} exited {code}:\n{err.getvalue()}"
    return code


def validate_cli(root: Path) -> int:
    return run_cli("validate", str(root))


# -- valid projects ----------------------------------------------------------------------


@FAST
@given(projects())
def test_generated_projects_compile_without_errors(docs: list[Spec]) -> None:
    result = compile_files(canonical(docs))
    assert result.ok, errors(result)
    assert result.plan is not None
    user = {f"{d['kind']}/{d['metadata']['name']}" for d in docs}
    assert user <= set(result.plan["specs"])
    with project_dir(canonical(docs)) as root:
        plan = root.parent / "plan.json"
        assert run_cli("compile", str(root), "-o", str(plan), "--explain") == 0
        assert json.loads(plan.read_text(encoding="utf-8")) == result.plan
        assert run_cli("graph", str(root), "--format", "dot") == 0


@FAST
@given(projects(), layouts)
def test_every_rendering_loads_back_to_the_same_data(docs: list[Spec], layout: Layout) -> None:
    """The renderings are right: the loader reads back exactly the documents written."""
    written = [with_defaults(d) for d in docs] if layout.explicit_defaults else docs
    expected = sorted(json.dumps(d, sort_keys=True) for d in written)
    loaded: list[str] = []
    for path, text in render(docs, layout).items():
        found, issues = load_text(text.removeprefix("\ufeff"), path)
        assert not issues, (issues, text)
        loaded += [json.dumps(d.data, sort_keys=True) for d in found]
    assert sorted(loaded) == expected


# -- hashes depend on meaning only ---------------------------------------------------------


@FAST
@given(projects(), layouts)
def test_formatting_and_layout_do_not_change_the_plan(docs: list[Spec], layout: Layout) -> None:
    reference = compile_files(canonical(docs))
    other = compile_files(render(docs, layout))
    assert reference.ok and other.ok, errors(other)
    assert reference.plan is not None and other.plan is not None
    assert hashes(other) == hashes(reference)
    assert other.plan["plan_hash"] == reference.plan["plan_hash"]
    assert dumps(other.plan) == dumps(reference.plan)


@FAST
@given(projects(), st.data())
def test_changing_one_leaf_changes_that_spec_and_the_plan(docs: list[Spec], data: Any) -> None:
    index, path, change = data.draw(st.sampled_from(list(leaves(docs))))
    before = compile_files(canonical(docs))
    after = compile_files(canonical(changed(docs, index, path, change)))
    assert before.ok and after.ok, errors(after)
    assert before.plan is not None and after.plan is not None
    key = f"{docs[index]['kind']}/{docs[index]['metadata']['name']}"
    old, new = hashes(before), hashes(after)
    assert new[key] != old[key], f"{key} {path}: hash unchanged"
    assert after.plan["plan_hash"] != before.plan["plan_hash"]
    assert {k: v for k, v in new.items() if k != key} == {
        k: v for k, v in old.items() if k != key
    }, "other specs' hashes changed"


@FAST
@given(projects())
def test_same_input_same_bytes(docs: list[Spec]) -> None:
    with project_dir(canonical(docs)) as root:
        first, second = compile_paths([root]), compile_paths([root])
    assert first.plan is not None and second.plan is not None, errors(first)
    assert dumps(first.plan) == dumps(second.plan)


_SUBPROCESS = """
import sys
from compiler.passes.emit import dumps
from compiler.pipeline import compile_paths
for path in sys.argv[1:]:
    r = compile_paths([path])
    sys.stdout.write(dumps(r.plan) if r.plan else "errors")
"""


def test_same_bytes_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    generate_project(tmp_path, tools=20, agents=15, policies=5, crews=8, seed=3, files=6)
    paths = [str(tmp_path), str(ROOT / "examples" / "research-crew")]
    outputs = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS, *paths],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            check=True,
        )
        assert "errors" not in done.stdout
        outputs.add(done.stdout)
    assert len(outputs) == 1, "plan bytes depend on the hash seed"


# -- robustness: no input makes the compiler raise -----------------------------------------

_NASTY = (
    "\t", "\x00", "\x85", "\u2028", "\ufeff", "🙂", ":", ": ", "- ", "{", "}", "[", "]", "&a ",
    "*a", "!", "|", ">", "%", "@", "`", "'", '"', "#", "\r", "? ", ",", "{{", "{%", "${env:",
)  # fmt: skip
_VALUES = (
    "", "~", "null", "[]", "{}", "-1", "0", "1e999", ".nan", "-.inf", "99999999999999999999999",
    "yes", "'x'", '"\\x"', "2020-01-01", "&a x", "*a", "*nope", "!!python/object:os.system",
    "!!python/object/apply:os.system ['true']", "!!binary aGVsbG8=", "!custom x", "|", ">",
    "{a: [b, {c: d}]}", "x" * 100_000, "${env:}", "${env:bad name}", "sk-" + "a1" * 20,
    "[" * 200 + "]" * 200, "{{ inputs.nope }}", "{{ tasks.x.output.y }}", "{% if %}",
    "https://u:p@example.com", "0x1F", "1_000", "Agent", "kiln/v2", "-", "? a", "<<: *a",
)  # fmt: skip
_KEYS = ("apiVersion", "kind", "metadata", "spec", "name", "tools", "<<", "? x", "na me", "")


def _lines(text: str, rng: random.Random) -> tuple[list[str], int]:
    lines = text.split("\n")
    return lines, rng.randrange(len(lines))


def _delete_line(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    del lines[i]
    return "\n".join(lines)


def _duplicate_line(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    lines.insert(i, lines[i])
    return "\n".join(lines)


def _swap_lines(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _reindent(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    stripped = lines[i].lstrip(" ")
    lines[i] = " " * rng.choice((0, 1, 3, 7, 40)) + rng.choice(("", "\t")) + stripped
    return "\n".join(lines)


def _insert(text: str, rng: random.Random) -> str:
    at = rng.randrange(len(text) + 1)
    junk = "".join(rng.choice(_NASTY) for _ in range(rng.randint(1, 4)))
    return text[:at] + junk + text[at:]


def _truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _replace_value(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    head, sep, _ = lines[i].partition(": ")
    lines[i] = (head + ": " if sep else lines[i].rstrip() + " ") + rng.choice(_VALUES)
    return "\n".join(lines)


def _rename_key(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    head, sep, tail = lines[i].partition(":")
    if sep:
        indent = head[: len(head) - len(head.lstrip(" -"))]
        key = head.strip(" -")
        new = rng.choice((*_KEYS, key[:-1], key + "s", key.upper(), key.replace("_", "-")))
        lines[i] = indent + new + sep + tail
    return "\n".join(lines)


def _aliases(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    lines[i] = lines[i].replace(": ", ": &a ", 1)
    j = rng.randrange(len(lines))
    lines[j] = lines[j].replace(": ", ": *a ", 1) if rng.random() < 0.5 else lines[j] + " *a"
    return "\n".join(lines)


def _laughs(text: str, rng: random.Random) -> str:
    bomb = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [
        f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join([f'*{chr(97 + k)}'] * 9)}]" for k in range(8)
    ]  # noqa: E501
    return text + "\n---\n" + "\n".join(bomb) + "\n"


def _python_tag(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    lines.insert(i, "evil: !!python/object/apply:os.system ['echo pwned']")
    return "\n".join(lines)


def _long_string(text: str, rng: random.Random) -> str:
    lines, i = _lines(text, rng)
    junk = rng.choice(("é", "x", "{{ x }}", "{% if x %}{% endif %}", "\\"))
    lines[i] = lines[i] + junk * rng.choice((1000, 70_000))
    return "\n".join(lines)


def _kind_swap(text: str, rng: random.Random) -> str:
    kinds = [*KINDS, "Agentt", "tool", "Crew ", "[Agent]", "{a: b}", "1", "null"]
    return text.replace(f"kind: {rng.choice(list(KINDS))}", f"kind: {rng.choice(kinds)}", 1)


MUTATIONS: tuple[Callable[[str, random.Random], str], ...] = (
    _delete_line, _duplicate_line, _swap_lines, _reindent, _insert, _truncate, _replace_value,
    _rename_key, _aliases, _laughs, _python_tag, _long_string, _kind_swap,
)  # fmt: skip


@MANY
@given(
    projects(),
    layouts,
    st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
    st.integers(0, 2**32),
)
def test_mutated_specs_never_crash(
    docs: list[Spec],
    layout: Layout,
    mutations: list[Callable[[str, random.Random], str]],
    seed: int,
) -> None:
    rng = random.Random(seed)
    files = render(docs, layout)
    victim = rng.choice(sorted(files))
    for mutate in mutations:
        files[victim] = mutate(files[victim], rng)
    with project_dir(files) as root:
        result = compile_paths([root])
        assert_well_formed(result)
        code = validate_cli(root)
    assert code == (0 if result.ok else 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _paths(value: Any, here: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every node under ``value`` (not ``value`` itself)."""
    if isinstance(value, dict | list):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            yield (*here, key)
            yield from _paths(child, (*here, key))


_BROKEN_TEMPLATES = (
    "{{ tasks.nope.output }}", "{{ inputs.nope }}", "{{ x.y }}", "{{ tasks }}", "{% if %}",
    "{{ tasks[0].output }}", "{{ inputs | nosuchfilter }}", "{% for a in b %}", "{{ input.q }}",
    "{% include 'x' %}", "{{ tasks.a.result.b }}", "{{ memories }}{{ query }}", "{{ 1 + }}",
)  # fmt: skip


@st.composite
def broken_projects(draw: st.DrawFn) -> list[Any]:
    """A valid project with a few data-level changes: the compiler must diagnose, not raise."""
    docs: list[Any] = draw(projects())
    words = sorted({d["metadata"]["name"] for d in docs} | {"calculator", "nope", ""})
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(docs) - 1))
        paths = list(_paths(docs[index]))
        op = draw(st.sampled_from(("delete", "value", "name", "template", "duplicate")))
        if op == "duplicate" or not paths:
            docs.append(json.loads(json.dumps(docs[index])))
            continue
        path = draw(st.sampled_from(paths))
        parent: Any = docs[index]
        for part in path[:-1]:
            parent = parent[part]
        if op == "delete":
            del parent[path[-1]]
        elif op == "value":
            parent[path[-1]] = draw(json_values)
        elif op == "name":
            parent[path[-1]] = draw(st.sampled_from(words))
        else:
            parent[path[-1]] = draw(st.sampled_from(_BROKEN_TEMPLATES))
    return docs


@MANY
@given(broken_projects(), layouts)
def test_broken_data_never_crashes(docs: list[Any], layout: Layout) -> None:
    with project_dir(render(docs, layout)) as root:
        result = compile_paths([root])
        assert_well_formed(result)
        assert validate_cli(root) == (0 if result.ok else 1)


@CHEAP
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    with project_dir({"spec.yaml": text}) as root:
        assert_well_formed(compile_paths([root]))
        validate_cli(root)


@CHEAP
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.yaml").write_bytes(data)
        assert_well_formed(compile_paths([tmp]))


def _field_names() -> list[str]:
    """Every field name of every spec model, so random documents get deep into validation."""
    found: set[str] = set()
    seen: set[type] = set()

    def walk(tp: Any) -> None:
        from pydantic import BaseModel

        for arg in getattr(tp, "__args__", ()):
            walk(arg)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.add(tp)
            for name, field in tp.model_fields.items():
                found.add(field.alias or name)
                walk(field.annotation)

    for model in KINDS.values():
        walk(model)
    return sorted(found)


FIELDS = _field_names()
spec_like_values = st.recursive(
    json_values,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)
spec_like_documents = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(("kiln/v1", "kiln/v1")) | json_values,
        "kind": st.sampled_from(sorted(KINDS)) | json_values,
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(("a", "b")) | json_values})
        | spec_like_values,
        "spec": spec_like_values,
    }
)


@CHEAP
@given(st.lists(json_values | spec_like_documents, min_size=1, max_size=3))
def test_random_documents_never_crash(documents: list[Any]) -> None:
    text = yaml.safe_dump_all(documents, allow_unicode=True)
    with project_dir({"random.yaml": text}) as root:
        assert_well_formed(compile_paths([root]))
        validate_cli(root)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: kiln/v1\nkind: [Agent]\nmetadata: {name: a}\n",
        "apiVersion: kiln/v1\nkind: {Agent: 1}\nmetadata: {name: a}\n",
    ],
    ids=["kind-is-a-list", "kind-is-a-mapping"],
)
def test_unhashable_kind_is_a_diagnostic_not_a_crash(text: str) -> None:
    """Found by the properties above: ``kind: [Agent]`` made validate raise TypeError."""
    with project_dir({"spec.yaml": text}) as root:
        result = compile_paths([root])
        assert_well_formed(result)
        assert [d.code for d in result.errors] == ["K2002"]
        assert validate_cli(root) == 1


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 100 + "1" + ")" * 100 + " }}",
        "{{ " + "not " * 1000 + "x }}",
        "{{ inputs.a" + " | upper" * 1000 + " }}",
        "{{ 1" + " + 1" * 3000 + " }}",
        "{{ inputs.a" + " and inputs.a" * 3000 + " }}",
    ],
    ids=["parens-100", "not-1000", "filters-1000", "plus-3000", "and-3000"],
)
def test_deep_template_expressions_are_diagnostics_not_crashes(template: str) -> None:
    """Found by test_mutated_specs_never_crash: deep expressions overflow the stack.

    Nested parentheses or ``not`` overflow jinja2's recursive parser in ``env.parse``
    (compiler/templates.py ``parse``); long filter, ``+`` or ``and`` chains parse, but
    overflow the recursive walk ``_collect`` in compiler/templates.py. ``compile_paths``
    raised RecursionError and ``kiln validate`` exited 3 instead of reporting K4003.
    """
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\n"
    text += f"spec:\n  inputs: {{a: {{type: string}}}}\n  instructions: '{template}'\n"
    with project_dir({"spec.yaml": text}) as root:
        result = compile_paths([root])
        assert_well_formed(result)
        validate_cli(root)


def test_user_tool_shadowing_a_standard_one_compiles() -> None:
    """Found by test_generated_projects_compile_without_errors (with SHADOW_STDLIB on).

    A user's Tool named like a standard one (``http_get``) shadows it, as resolve intends;
    but check_scope still walks the standard tool's template ``{{ input.url }}`` and judges
    it against the user's input_schema, reporting K4004 at the user's executor.
    """
    text = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: http_get}
spec:
  description: my own http_get
  input_schema: {type: object, properties: {}}
  executor: {type: python, entrypoint: "pkg.tools:run"}
"""
    result = compile_files({"tool.yaml": text})
    assert result.ok, errors(result)


def test_strategies_are_not_vacuous() -> None:
    """The project strategy draws every kind, and templates that read task outputs."""
    seen: set[str] = set()
    reads_fields = False

    # derandomized: a probe of what the strategy can draw must not pass or fail by luck
    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(projects())
    def probe(docs: list[Spec]) -> None:
        nonlocal reads_fields
        seen.update(d["kind"] for d in docs)
        for d in docs:
            if d["kind"] == "Crew":
                reads_fields |= any(".output." in t["prompt"] for t in d["spec"]["tasks"])

    probe()
    assert seen == set(KINDS)
    assert reads_fields
