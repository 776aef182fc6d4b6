"""Adversarial specs: what a new user writes, with mistakes of every class.

Each test writes specs nobody here wrote into a fresh folder, compiles them, and checks what
a person reading the answer needs: the exit code, the ``file:line:col`` of the offending token
(lines and columns counted by hand from the text in the test), the code, and a phrase of a
message a person understands. No input may ever produce a traceback or an internal error.

Some tests assert behaviour the compiler does not have yet: they describe the correct answer
and fail until it is implemented.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler.diagnostics import Diagnostic
from compiler.pipeline import Compilation, compile_paths
from runtime.cli import main

REPO = Path(__file__).resolve().parents[2]

Files = dict[str, str | bytes]

RESEARCH_AGENT = """
apiVersion: kiln/v1
kind: Agent
metadata: {name: researcher}
spec:
  inputs: {topic: {type: string}}
  instructions: Research {{ inputs.topic }}.
  output_schema:
    type: object
    properties: {facts: {type: array, items: {type: string}}}
    required: [facts]
"""


# -- helpers -----------------------------------------------------------------------------------


def _text(spec: str) -> str:
    return textwrap.dedent(spec).lstrip("\n")


def _write(root: Path, files: Files) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(_text(content).encode("utf-8"))
    return root


def _compile(tmp_path: Path, files: Files) -> Compilation:
    root = _write(tmp_path / "project", files)
    return compile_paths([root], stdlib=True)


def _where(d: Diagnostic) -> tuple[str, int, int, str]:
    return (Path(d.span.path).name, d.span.line, d.span.col, d.code)


def _all(result: Compilation) -> list[tuple[str, int, int, str]]:
    return [_where(d) for d in result.diagnostics]


def _one(result: Compilation, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, f"expected one {code}, got {_all(result)}"
    return found[0]


def _at(result: Compilation, line: int, col: int, code: str, file: str = "a.yaml") -> Diagnostic:
    for d in result.diagnostics:
        if _where(d) == (file, line, col, code):
            return d
    raise AssertionError(f"no {code} at {file}:{line}:{col}; got {_all(result)}")


def _words(d: Diagnostic) -> str:
    return f"{d.message}\n{d.hint or ''}"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    for stream in (out, err):
        assert "Traceback" not in stream
        assert "internal error" not in stream
    return code, out, err


def _validate(tmp_path: Path, files: Files, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    root = _write(tmp_path / "project", files)
    code, _, err = _cli(["validate", str(root), "--color", "never"], capsys)
    return code, err


# -- YAML: syntax, tabs, keys, aliases, tags, limits, encodings ---------------------------------


def test_unclosed_flow_mapping_names_where_it_was_opened(tmp_path: Path) -> None:
    result = _compile(
        tmp_path,
        {
            "a.yaml": "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a\n"
            "spec:\n  model: local/smollm2-135m\n"
        },
    )
    d = _one(result, "K1003")
    assert d.span.line in (3, 4)
    # the '{' that is never closed is on line 3, column 11: the user must be told so
    assert "line 3" in _words(d)


def test_unclosed_flow_sequence_in_second_document_names_its_line(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: b}
    spec:
      tools: [calculator, http_get
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: c}
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K1003")
    assert "line 9" in _words(d)


def test_tab_indenting_a_mapping_key_says_tabs(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata:\n\tname: a\n"
    d = _one(_compile(tmp_path, {"a.yaml": text.encode()}), "K1003")
    assert (d.span.line, d.span.col) == (4, 1)
    assert "tab" in _words(d).lower()


def test_tab_indenting_a_spec_key_says_tabs(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata:\n  name: a\nspec:\n\tmodel: local/x\n"
    d = _one(_compile(tmp_path, {"a.yaml": text.encode()}), "K1003")
    assert d.span.line == 6
    assert "tab" in _words(d).lower()


def test_tab_after_colon_is_plain_whitespace(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata:\n  name:\ta\nspec:\n  strategy:\tbogus\n"
    result = _compile(tmp_path, {"a.yaml": text.encode()})
    assert _all(result) == [("a.yaml", 6, 13, "K2004")]


def test_duplicate_key_in_block_mapping(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: a
    spec:
      model: openai/gpt-4o
      strategy: cot
      model: openai/gpt-4o-mini
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K1007")
    assert (d.span.line, d.span.col) == (8, 3)
    assert "duplicate key 'model'" in d.message and "line 6" in d.message


def test_duplicate_key_in_flow_mapping(tmp_path: Path) -> None:
    result = _compile(
        tmp_path, {"a.yaml": "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a, name: b}\n"}
    )
    _at(result, 3, 21, "K1007")


def test_billion_laughs_is_rejected_without_expanding(tmp_path: Path) -> None:
    lines = [
        "apiVersion: kiln/v1",
        "kind: Agent",
        "metadata:",
        "  name: lol",
        "  labels:",
        '    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"    {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    result = _compile(tmp_path, {"a.yaml": "\n".join(lines) + "\n"})
    d = _one(result, "K1006")
    assert d.span.line <= 14
    assert "billion laughs" in _words(d)


def test_python_tag_is_refused(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: !!python/object/apply:os.system ["id"]
      executor: {type: builtin, function: 'stdlib_tools.noop:run'}
    """
    _at(_compile(tmp_path, {"a.yaml": spec}), 5, 16, "K1008")


def test_custom_tag_is_refused(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      memory: !Ref mem
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 5, 11, "K1008")
    assert "!Ref" in d.message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    text = (
        "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  output_schema: "
        + "{a: " * 100
        + "1"
        + "}" * 100
        + "\n"
    )
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1005")
    assert d.span.line == 5


def test_huge_file_is_refused_at_line_one(tmp_path: Path) -> None:
    text = (
        "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  description: |\n"
        + ("    " + "x" * 95 + "\n") * 50_000
    )
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1002")
    assert (d.span.line, d.span.col) == (1, 1)


def test_latin1_byte_is_located(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  description: caf\xe9\n"
    d = _one(_compile(tmp_path, {"a.yaml": text.encode("latin-1")}), "K1011")
    assert (d.span.line, d.span.col) == (5, 19)
    assert "UTF-8" in _words(d)


def test_utf16_file_is_not_utf8(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\n"
    _one(_compile(tmp_path, {"a.yaml": text.encode("utf-16")}), "K1011")


def test_nul_byte_is_located_at_its_line_and_column(tmp_path: Path) -> None:
    text = 'apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  description: "a\x00b"\n'
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1003")
    assert (d.span.line, d.span.col) == (5, 18)
    assert "<unicode string>" not in d.message and "position" not in d.message


def test_form_feed_is_located_at_its_line(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\n# section\x0c\n"
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1003")
    assert d.span.line == 4


def test_empty_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a warning, not an error: an empty file is odd, not wrong (kubectl skips them too)
    code, err = _validate(tmp_path, {"a.yaml": ""}, capsys)
    assert code == 0
    assert "a.yaml:1:1: warning[K5004]" in err and "empty" in err


def test_comment_only_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _validate(tmp_path, {"a.yaml": "# TODO: write the agent\n"}, capsys)
    assert code == 0
    assert "a.yaml:1:1: warning[K5004]" in err


def test_list_at_top_level(tmp_path: Path) -> None:
    text = "- apiVersion: kiln/v1\n  kind: Agent\n  metadata: {name: a}\n"
    d = _at(_compile(tmp_path, {"a.yaml": text}), 1, 1, "K1009")
    assert "not a list" in d.message


def test_document_that_is_just_a_string(tmp_path: Path) -> None:
    d = _at(_compile(tmp_path, {"a.yaml": "hello world\n"}), 1, 1, "K1009")
    assert "not a string" in d.message


def test_scalar_and_list_documents_among_good_ones(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    just a note
    ---
    - 1
    - 2
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 5, 1, "K1009"), ("a.yaml", 7, 1, "K1009")]


def test_stray_document_separators_are_fine(tmp_path: Path) -> None:
    text = "---\n---\napiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\n---\n...\n"
    assert _compile(tmp_path, {"a.yaml": text}).ok


def test_complex_block_key_is_a_yaml_error(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  ? [a, b]\n  : 1\n"
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1003")
    assert d.span.line == 5


def test_flow_sequence_as_key_is_a_yaml_error(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  [a]: 1\n"
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1003")
    assert d.span.line == 5


def test_flow_mapping_as_key_is_a_yaml_error(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a, {x: 1}: 2}\n"
    d = _one(_compile(tmp_path, {"a.yaml": text}), "K1003")
    assert d.span.line == 3


def test_explicit_simple_key_is_fine(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  ? strategy\n  : cot\n"
    assert _compile(tmp_path, {"a.yaml": text}).ok


def test_unknown_alias(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  limits: *defaults\n"
    d = _at(_compile(tmp_path, {"a.yaml": text}), 5, 11, "K1003")
    assert "*defaults" in d.message


def test_merge_key_inside_one_document_works(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      tasks:
        - &base {name: t, agent: a, prompt: go}
        - <<: *base
          name: u
          agnt: a
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 9, 7, "K2003")]


def test_nan_is_refused(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  temperature: .nan\n"
    _at(_compile(tmp_path, {"a.yaml": text}), 5, 16, "K1003")


def test_norway_problem_hints_at_quoting(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: a
      labels: {country: NO, enabled: yes}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert "quote" in (_at(result, 5, 21, "K2004").hint or "")
    assert "quote" in (_at(result, 5, 34, "K2004").hint or "")


def test_version_written_as_float_hints_at_quoting(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      version: 1.10
      executor: {type: builtin, function: 'stdlib_tools.noop:run'}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 6, 12, "K2004")
    assert "quote" in (d.hint or "")


def test_byte_order_mark_does_not_shift_columns(tmp_path: Path) -> None:
    text = "\ufeffapiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  modle: local/x\n"
    d = _at(_compile(tmp_path, {"a.yaml": text}), 5, 3, "K2003")
    assert d.hint == "did you mean 'model'?"


def test_crlf_template_error_is_on_the_right_line(tmp_path: Path) -> None:
    text = (
        "apiVersion: kiln/v1\r\nkind: Agent\r\nmetadata:\r\n  name: a\r\nspec:\r\n"
        "  instructions: |\r\n    line one\r\n    line two {{ inputs.nope }}\r\n"
    )
    _at(_compile(tmp_path, {"a.yaml": text.encode()}), 8, 17, "K4004")


def test_crlf_flow_mapping_errors_are_on_the_right_columns(tmp_path: Path) -> None:
    text = (
        "apiVersion: kiln/v1\r\nkind: Agent\r\nmetadata: {name: a}\r\n"
        "spec: {model: openai/gpt-4o, limits: {max_iterations: 0, timeout_s: -1},"
        " tols: [calculator]}\r\n"
    )
    result = _compile(tmp_path, {"a.yaml": text.encode()})
    assert _all(result) == [
        ("a.yaml", 4, 55, "K2004"),
        ("a.yaml", 4, 69, "K2004"),
        ("a.yaml", 4, 74, "K2003"),
    ]


def test_cr_only_line_endings(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\rkind: Agent\rmetadata: {name: a}\rspec:\r  strategy: nope\r"
    assert _all(_compile(tmp_path, {"a.yaml": text.encode()})) == [("a.yaml", 5, 13, "K2004")]


def test_bom_crlf_and_emoji_template_column(tmp_path: Path) -> None:
    text = (
        "\ufeffapiVersion: kiln/v1\r\nkind: Agent\r\n"
        'metadata: {name: a, labels: {emoji: "\U0001f4dd\u65e5\u672c"}}\r\n'
        "spec:\r\n  instructions: |\r\n    L1 \u65e5\u672c\r\n    L2\r\n"
        "    L3 \U0001f4dd {{ inputs.gone }}\r\n"
    )
    result = _compile(tmp_path, {"a.yaml": text.encode()})
    assert _all(result) == [("a.yaml", 8, 13, "K4004")]


# -- validation: keys, types, names ---------------------------------------------------------------


def test_typos_and_wrong_types_in_one_agent(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: researcher
    spec:
      model: openai/gpt-4o-mini
      instruction: |
        You research things.
      max_iter: 5
      limits:
        max_iterations: "ten"
        timeout: 30
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [
        ("a.yaml", 7, 3, "K2003"),
        ("a.yaml", 9, 3, "K2003"),
        ("a.yaml", 11, 21, "K2004"),
        ("a.yaml", 12, 5, "K2003"),
    ]
    assert _at(result, 7, 3, "K2003").hint == "did you mean 'instructions'?"
    assert _at(result, 12, 5, "K2003").hint == "did you mean 'timeout_s'?"
    assert "'ten'" in _at(result, 11, 21, "K2004").message


def test_missing_api_version_never_crashes(tmp_path: Path) -> None:
    result = _compile(tmp_path, {"a.yaml": "kind: Agent\nmetadata: {name: a}\n"})
    assert _all(result) == [("a.yaml", 1, 1, "K2001")]


def test_wrong_api_version_points_at_the_value(tmp_path: Path) -> None:
    result = _compile(
        tmp_path, {"a.yaml": "apiVersion: kiln/v2\nkind: Agent\nmetadata: {name: a}\n"}
    )
    d = _at(result, 1, 13, "K2001")
    assert "kiln/v1" in (d.hint or "")


def test_lowercase_kind_suggests_the_kind(tmp_path: Path) -> None:
    result = _compile(
        tmp_path, {"a.yaml": "apiVersion: kiln/v1\nkind: agent\nmetadata: {name: a}\n"}
    )
    assert _at(result, 2, 7, "K2002").hint == "did you mean 'Agent'?"


def test_invalid_names(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: Research Agent}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: -lead}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: rédacteur
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [
        ("a.yaml", 3, 18, "K2006"),
        ("a.yaml", 7, 18, "K2006"),
        ("a.yaml", 12, 9, "K2006"),
    ]
    assert "rédacteur" in _at(result, 12, 9, "K2006").message


def test_tools_written_as_a_string_says_list(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      tools: calculator
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 5, 10, "K2004")
    # 'tuple' is Python; a YAML user writes a list
    assert "tuple" not in d.message
    assert "list" in _words(d)


def test_spec_written_as_a_list_speaks_yaml_not_pydantic(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      - model: local/smollm2-135m
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K2004")
    assert d.span.line == 5
    assert "instance of" not in d.message and "AgentSpec" not in d.message
    assert "mapping" in _words(d)


def test_crewai_style_task_has_no_spurious_empty_tasks_error(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      tasks:
        - name: t
          agent: a
          description: Research AI
          expected_output: a list
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    # one task was written: "at least 1 item ... not 0" is a consequence, not a mistake
    assert _all(result) == [("a.yaml", 10, 7, "K2005"), ("a.yaml", 13, 7, "K2003")]
    assert "prompt" in _at(result, 10, 7, "K2005").message


def test_out_of_range_values_in_flow_mapping(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      temperature: 3
      limits: {max_iterations: 0, timeout_s: 999999, max_tokens: -5}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [
        ("a.yaml", 5, 16, "K2004"),
        ("a.yaml", 6, 28, "K2004"),
        ("a.yaml", 6, 42, "K2004"),
        ("a.yaml", 6, 62, "K2004"),
    ]


def test_enum_value_lists_the_choices(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      strategy: ReAct
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 5, 13, "K2004")
    assert "'react'" in (d.hint or "")


def test_executor_type_typo(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      executor:
        type: pyhton
        code: 'def run(): pass'
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 7, 11, "K2004")
    assert d.hint == "did you mean 'python'?"


def test_builtin_function_format_is_explained_without_a_regex(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      executor: {type: builtin, function: mymod.run}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 6, 39, "K2004")
    assert "\\w" not in d.message and "^[" not in d.message
    assert "module:function" in _words(d)


def test_memory_policy_values(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: MemoryPolicy
    metadata: {name: m}
    spec:
      scope: global
      vector: {backend: pinecone}
      remember: [everything]
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    errors = [w for w in _all(result) if w[3] != "K5002"]
    assert errors == [
        ("a.yaml", 5, 10, "K2004"),
        ("a.yaml", 6, 21, "K2004"),
        ("a.yaml", 7, 14, "K2004"),
    ]


# -- resolve: duplicates and dangling references -------------------------------------------------


def test_dangling_references_and_duplicates_across_files(tmp_path: Path) -> None:
    agents = """
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: writer
    spec:
      tools: [web_search, calculator]
      memory: long-term
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: writer
    spec:
      instructions: duplicate
    """
    crew = """
    apiVersion: kiln/v1
    kind: Crew
    metadata:
      name: blog
    spec:
      tasks:
        - name: draft
          agent: writter
          prompt: Write a draft.
        - name: edit
          agent: editor
          prompt: Edit {{ tasks.draft.output }}
          depends_on: [draft, reviw]
      output: publish
    """
    result = _compile(tmp_path, {"agents.yaml": agents, "crew.yaml": crew})
    assert _all(result) == [
        ("agents.yaml", 6, 11, "K3002"),
        ("agents.yaml", 7, 11, "K3003"),
        ("agents.yaml", 12, 9, "K3001"),
        ("crew.yaml", 8, 14, "K3004"),
        ("crew.yaml", 11, 14, "K3004"),
        ("crew.yaml", 13, 27, "K3005"),
        ("crew.yaml", 14, 11, "K3005"),
    ]
    assert "agents.yaml:4:9" in _at(result, 12, 9, "K3001", "agents.yaml").message
    assert _at(result, 8, 14, "K3004", "crew.yaml").hint == "did you mean 'writer'?"


def test_duplicate_task_names(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      tasks:
        - {name: t, agent: a, prompt: one}
        - {name: u, agent: a, prompt: two}
        - {name: t, agent: a, prompt: three}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 12, 14, "K3001")
    assert "'t'" in d.message


def test_crew_manager_and_memory_that_do_not_exist(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      process: hierarchical
      manager: boss
      memory: shared
      tasks:
        - {name: t, agent: a, prompt: go}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 10, 12, "K3004"), ("a.yaml", 11, 11, "K3003")]


def test_unknown_agent_hint_is_grammatical(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: g}
    spec:
      tasks:
        - {name: t, agent: a, prompt: go}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 6, 24, "K3004")
    assert "a agent" not in _words(d)


# -- check: cycles, process, schemas, models, secrets ---------------------------------------------


def test_task_cycle_through_a_template_reference_is_reported_whole(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a1}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata:
      name: loop
    spec:
      process: parallel
      tasks:
        - name: plan
          agent: a1
          prompt: plan using {{ tasks.review.output }}
        - name: build
          agent: a1
          prompt: build
          depends_on: [plan]
        - name: review
          agent: a1
          prompt: review
          depends_on: [build]
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4001")
    for name in ("plan", "build", "review"):
        assert name in d.message
    assert d.message.count("->") == 3


def test_long_cycle_and_two_separate_cycles(tmp_path: Path) -> None:
    tasks = "".join(
        f"    - {{name: t{i}, agent: a, prompt: go, depends_on: [t{(i + 1) % 5}]}}\n"
        for i in range(5)
    )
    head = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\n---\n"
    crew = "apiVersion: kiln/v1\nkind: Crew\nmetadata: {name: c}\nspec:\n  process: parallel\n"
    two = (
        "    - {name: a1, agent: a, prompt: go, depends_on: [a2]}\n"
        "    - {name: a2, agent: a, prompt: go, depends_on: [a1]}\n"
        "    - {name: b1, agent: a, prompt: go, depends_on: [b2]}\n"
        "    - {name: b2, agent: a, prompt: go, depends_on: [b1]}\n"
    )
    result = _compile(
        tmp_path,
        {
            "a.yaml": head + crew + "  tasks:\n" + tasks,
            "b.yaml": head.replace("name: a}", "name: b}").replace(
                "metadata: {name: b}", "metadata: {name: bb}"
            )
            + crew.replace("name: c}", "name: d}")
            + "  tasks:\n"
            + two,
        },
    )
    long = _at(result, 11, 53, "K4001")  # the dependency itself, inside the list
    assert long.message.endswith("t0 -> t1 -> t2 -> t3 -> t4 -> t0")
    cycles = [w for w in _all(result) if w[0] == "b.yaml" and w[3] == "K4001"]
    assert len(cycles) == 2


def test_self_dependency(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      tasks:
        - name: t
          agent: a
          prompt: one
          depends_on: [t]
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4001")
    assert d.span.line == 13


def test_delegation_cycle_and_dangling_delegate(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec: {delegate_to: [b]}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: b}
    spec: {delegate_to: [c]}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: c}
    spec: {delegate_to: [a, ghost]}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert "a -> b -> c -> a" in _one(result, "K4001").message
    _at(result, 14, 25, "K3004")


def test_process_mismatches(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      process: hierarchical
      tasks:
        - {name: t, agent: a, prompt: one}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: s}
    spec:
      process: sequential
      tasks:
        - {name: first, agent: a, prompt: 'use {{ tasks.second.output }}'}
        - {name: second, agent: a, prompt: two}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 9, 12, "K4010"), ("a.yaml", 19, 39, "K4010")]


def test_json_schema_type_typo(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      input_schema:
        type: object
        properties:
          query: {type: strin}
      output_schema:
        type: objekt
      executor: {type: builtin, function: 'stdlib_tools.noop:run'}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert "did you mean 'string'?" in _at(result, 9, 21, "K4002").message
    assert "did you mean 'object'?" in _at(result, 11, 11, "K4002").message


def test_every_json_schema_error_of_one_schema_is_reported(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      output_schema:
        type: object
        properties:
          n: {type: integer, minimum: "1"}
          tags: {type: array, items: string}
        required: n
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert [w for w in _all(result) if w[3] == "K4002"] == [
        ("a.yaml", 8, 35, "K4002"),
        ("a.yaml", 9, 34, "K4002"),
        ("a.yaml", 10, 15, "K4002"),
    ]


def test_json_schema_type_list_with_a_typo(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      output_schema:
        type: object
        properties:
          e: {type: [string, nul]}
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4002")
    assert d.span.line == 8
    assert "nul" in d.message


def test_json_schema_dangling_ref(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      output_schema:
        type: object
        properties:
          c: {$ref: "#/$defs/missing"}
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4002")
    assert d.span.line == 8
    assert "missing" in d.message


def test_json_schema_bad_regex(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      output_schema:
        type: object
        properties:
          d: {type: string, pattern: "([a-z"}
    """
    _at(_compile(tmp_path, {"a.yaml": spec}), 8, 34, "K4002")


def test_malformed_model_strings(tmp_path: Path) -> None:
    models = ["gpt-4o", "opneai/gpt-4o", "openai/", "'openai/gpt 4o'"]
    text = "---\n".join(
        f"apiVersion: kiln/v1\nkind: Agent\nmetadata: {{name: m{i}}}\nspec:\n  model: {m}\n"
        for i, m in enumerate(models)
    )
    result = _compile(tmp_path, {"a.yaml": text})
    assert _all(result) == [("a.yaml", 5 + 6 * i, 10, "K4007") for i in range(4)]
    assert _at(result, 5, 10, "K4007").hint == "write 'openai/gpt-4o'"
    assert "openai/gpt-4o" in (_at(result, 11, 10, "K4007").hint or "")


def test_colon_instead_of_slash_in_model_suggests_the_fix(tmp_path: Path) -> None:
    text = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  model: openai:gpt-4o\n"
    d = _at(_compile(tmp_path, {"a.yaml": text}), 5, 10, "K4007")
    assert "openai/gpt-4o" in (d.hint or "")


def test_malformed_fallback_in_flow_sequence(tmp_path: Path) -> None:
    text = (
        "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n"
        "  fallbacks: [openai/gpt-4o-mini, claude-3-haiku]\n"
    )
    d = _at(_compile(tmp_path, {"a.yaml": text}), 5, 35, "K4007")
    assert d.hint == "write 'anthropic/claude-3-haiku'"


def test_real_provider_strings_are_not_errors(tmp_path: Path) -> None:
    models = [
        "ollama/llama3",
        "groq/llama3-8b-8192",
        "azure/my-deployment",
        "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
        "openrouter/anthropic/claude-3.5-sonnet",
        "gemini/gemini-1.5-pro",
        "openai/ft:gpt-4o-mini:org::abc123",
        "scripted:turns.txt",  # a script beside the specs: not *.yaml, or it is read as specs
    ]
    text = "---\n".join(
        f"apiVersion: kiln/v1\nkind: Agent\nmetadata: {{name: m{i}}}\nspec:\n  model: '{m}'\n"
        for i, m in enumerate(models)
    )
    assert _compile(tmp_path, {"a.yaml": text, "turns.txt": ""}).ok


def test_literal_secrets(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      model: openai/gpt-4o-mini
      model_params:
        api_key: sk-proj-abcdefghijklmnopqrstuvwxyz123456
        token: abc123
        password: "${env:DB_PASS}"
    ---
    apiVersion: kiln/v1
    kind: MemoryPolicy
    metadata: {name: m}
    spec:
      short_term: {backend: redis, url: 'redis://admin:hunter2@localhost:6379/0'}
      graph: {backend: neo4j, uri: bolt://db:7687, user: neo4j, password: s3cr3t}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert [w for w in _all(result) if w[3] == "K4008"] == [
        ("a.yaml", 7, 14, "K4008"),
        ("a.yaml", 8, 12, "K4008"),
        ("a.yaml", 15, 52, "K4008"),  # the password inside the URL
        ("a.yaml", 16, 71, "K4008"),
    ]
    assert "${env:" in (_at(result, 7, 14, "K4008").hint or "")


def test_secrets_in_mcp_env_and_http_headers(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: gh}
    spec:
      description: GitHub via MCP
      executor:
        type: mcp
        server:
          command: [npx, -y, "@modelcontextprotocol/server-github"]
          env:
            GITHUB_PERSONAL_ACCESS_TOKEN: ghp_0123456789abcdefghijABCDEFGHIJ012345
    ---
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: weather}
    spec:
      description: Weather
      executor:
        type: http
        url: "https://api.weather.example/v1/today"
        headers:
          X-Api-Key: 9f8e7d6c5b4a39281706
          Authorization: "Bearer ${env:WEATHER_TOKEN}"
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert [w for w in _all(result) if w[3] == "K4008"] == [
        ("a.yaml", 11, 39, "K4008"),
        ("a.yaml", 22, 18, "K4008"),
    ]


def test_malformed_env_references(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      model_params: {api_key: '${env:openai-key}'}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: b}
    spec:
      model_params: {api_key: '${env:}'}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 5, 27, "K4009"), ("a.yaml", 11, 27, "K4009")]


def test_shell_style_env_reference_gets_the_right_suggestion(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      model_params: {api_key: '$OPENAI_API_KEY'}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    [d] = result.diagnostics
    assert (d.span.line, d.span.col) == (5, 27)
    # the user meant the variable OPENAI_API_KEY: say how to write it, not ${env:API_KEY}
    assert "${env:OPENAI_API_KEY}" in _words(d)


# -- templates -----------------------------------------------------------------------------------


def test_unclosed_expression_on_line_three_of_a_block_scalar(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {topic: {type: string}}
      instructions: |
        You are a researcher.
        Be careful.
        Research {{ inputs.topic }.
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4003")
    assert d.span.line == 9
    assert 14 <= d.span.col <= 30


def test_undefined_variables_on_line_three_of_a_block_scalar(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {topic: {type: string}}
      instructions: |
        You are a researcher.
        Be careful.
        Research {{ inputs.topc }} for {{ user }}.
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 9, 17, "K4004"), ("a.yaml", 9, 39, "K4004")]
    assert _at(result, 9, 17, "K4004").hint == "did you mean 'topic'?"


def test_unclosed_for_points_at_the_for(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {items: {type: array}}
      instructions: |
        Items:
        {% for i in inputs.items %}
        - {{ i }}
        done
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4003")
    assert (d.span.line, d.span.col) == (8, 5)
    assert "endfor" in d.message


def test_folded_plain_and_quoted_scalars_keep_lines(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: folded}
    spec:
      instructions: >
        first line
        second line
        third {{ inputs.missing }}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: plain}
    spec:
      instructions: first line
        second line
        third {{ nope }}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: quoted}
    spec:
      instructions: "Line one\\nLine two\\nHello {{ inputs.who }}"
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: escaped}
    spec:
      instructions: "caf\\u00e9 \\"q\\" {{ inputs.zzz }}"
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: continued}
    spec:
      instructions: "first
        second
        third {{ inputs.yyy }}"
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [
        ("a.yaml", 8, 14, "K4004"),
        ("a.yaml", 16, 14, "K4004"),
        ("a.yaml", 22, 47, "K4004"),
        ("a.yaml", 28, 37, "K4004"),
        ("a.yaml", 36, 14, "K4004"),
    ]


def test_multiline_expression_and_comments_and_raw(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: b}
    spec:
      inputs: {topic: {}}
      instructions: |-

        {# {{ commented_out }} #}
        {% raw %}{{ literal }}{% endraw %}
        {{- inputs.topic -}}
        {{
           inputs.multi
        }}
    """
    assert _all(_compile(tmp_path, {"a.yaml": spec})) == [("a.yaml", 12, 8, "K4004")]


def test_variable_whose_name_also_appears_in_the_text(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      instructions: "Ask the user about {{ user }}"
    """
    # "user" first appears in the prose at column 26; the expression is at column 40
    assert _all(_compile(tmp_path, {"a.yaml": spec})) == [("a.yaml", 5, 40, "K4004")]


def test_single_braces_are_text_and_bare_input_name_suggests_inputs(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {topic: {}}
      instructions: 'Research {topic} carefully and {{topic}}'
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4004")
    assert (d.span.line, d.span.col) == (6, 51)
    assert "inputs.topic" in _words(d)


def test_unknown_filter_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {topic: {}}
      instructions: 'Topic: {{ inputs.topic | upperr }}'
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    d = result.errors[0]
    assert len(result.errors) == 1
    assert d.code in ("K4003", "K4004")
    assert d.span.line == 6
    assert "upperr" in d.message
    assert "upper" in (d.hint or "")


def test_unknown_test_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {n: {type: integer}}
      instructions: |
        {% if inputs.n is evenn %}even{% endif %}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert [w[1] for w in _all(result)] == [7]


def test_include_and_import_are_reported(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      instructions: |
        {% include 'header.txt' %}
        Hello
    """
    d = _one(_compile(tmp_path, {"a.yaml": spec}), "K4003")
    assert d.span.line == 6
    assert "include" in d.message


def test_set_loop_and_subscript_are_in_scope(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {items: {type: array}}
      instructions: |
        {% set n = inputs.items | length %}
        {% for it in inputs.items %}{{ loop.index }}/{{ n }}: {{ it }}{% endfor %}
        {{ inputs['items'] }}
    """
    assert _compile(tmp_path, {"a.yaml": spec}).diagnostics == ()


def test_crew_prompts_data_flow(tmp_path: Path) -> None:
    crew = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: plain}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      process: parallel
      inputs: {topic: {}}
      tasks:
        - {name: r, agent: researcher, prompt: 'Research {{ inputs.topik }}'}
        - {name: p, agent: plain, prompt: go}
        - name: w
          agent: researcher
          depends_on: [r]
          prompt: |
            Facts: {{ tasks.r.output.facts }}
            Sources: {{ tasks.r.output.sources }}
            Notes: {{ tasks.p.output }}
            More: {{ tasks.rr.output }}
    """
    result = _compile(tmp_path, {"a.yaml": RESEARCH_AGENT, "crew.yaml": crew})
    assert _all(result) == [
        ("crew.yaml", 12, 57, "K4004"),
        ("crew.yaml", 19, 21, "K4006"),
        ("crew.yaml", 20, 19, "K4005"),
        ("crew.yaml", 21, 18, "K4004"),
    ]
    assert _at(result, 12, 57, "K4004", "crew.yaml").hint == "did you mean 'topic'?"
    assert "facts" in (_at(result, 19, 21, "K4006", "crew.yaml").message)
    assert "'r'" in (_at(result, 21, 18, "K4004", "crew.yaml").hint or "")


def test_field_of_text_output(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: plain}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      tasks:
        - {name: p, agent: plain, prompt: go}
        - name: w
          agent: plain
          prompt: |
            Notes:
            {% for n in tasks.p.output.notes %}- {{ n }}{% endfor %}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 15, 21, "K4006")
    assert "no output_schema" in d.message


def test_agent_input_that_the_crew_does_not_declare(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      inputs: {topic: {type: string}, tone: {type: string}}
      instructions: 'Write about {{ inputs.topic }} in a {{ inputs.tone }} tone'
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata: {name: c}
    spec:
      inputs: {topic: {}}
      tasks:
        - {name: one, agent: a, prompt: 'go {{ inputs.topic }}'}
    """
    d = _at(_compile(tmp_path, {"a.yaml": spec}), 14, 26, "K4011")
    assert "tone" in d.message


def test_tool_templates(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      input_schema: {type: object, properties: {path: {type: string}}}
      executor:
        type: shell
        argv: [ls, '-la', '{{ input.pth }}', '{{ path']
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _at(result, 9, 27, "K4004").hint == "did you mean 'path'?"
    _at(result, 9, 43, "K4003")


def test_a_schema_error_does_not_hide_template_errors(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: researcher}
    ---
    apiVersion: kiln/v1
    kind: Crew
    metadata:
      name: blog
    spec:
      proces: sequential
      tasks:
        - name: research
          agent: researcher
          prompt: Research {{ inputs.topic }}
        - name: write
          agent: researcher
          prompt: Write from {{ tasks.research.output.summary }}
          depends_on: [research]
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [
        ("a.yaml", 10, 3, "K2003"),
        ("a.yaml", 14, 27, "K4004"),
        ("a.yaml", 17, 29, "K4006"),
    ]


def test_a_schema_error_does_not_make_tools_look_unused(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: t}
    spec:
      description: d
      executor: {type: builtin, function: 'stdlib_tools.noop:run'}
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a, annotations: {x: 1}}
    spec:
      tools: [t]
      instructions: "{{ inputs.gone }}"
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    assert _all(result) == [("a.yaml", 10, 38, "K2004"), ("a.yaml", 13, 21, "K4004")]


# -- a whole project with many mistakes ------------------------------------------------------------


def test_many_mistakes_in_one_project_are_all_reported_sorted(tmp_path: Path) -> None:
    agents = """
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: researcher
    spec:
      model: gpt4
      instructions: |
        Research {{ inputs.topic }}.
      tools: [serper_search]
      memory: mem
    ---
    apiVersion: kiln/v1
    kind: Agent
    metadata:
      name: writer
    spec:
      model: anthropic/claude-3-5-sonnet
      model_params: {api_key: sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}
      strategy: plan
    """
    crew = """
    apiVersion: kiln/v1
    kind: Crew
    metadata:
      name: blog
    spec:
      proces: sequential
      tasks:
        - name: research
          agent: researcher
          prompt: Research {{ inputs.topic }}
        - name: write
          agent: writer
          prompt: Write from {{ tasks.research.output.summary }}
          depends_on: [research, review]
    """
    memory = "apiVersion: kiln/v1\nkind: MemoryPolicy\nmetadata:\n  name: mem\n  name: memory\n"
    result = _compile(tmp_path, {"agents.yaml": agents, "crew.yaml": crew, "memory.yaml": memory})
    found = [w for w in _all(result) if w[3] != "K5003"]
    assert found == [
        ("agents.yaml", 6, 10, "K4007"),
        ("agents.yaml", 8, 17, "K4004"),
        ("agents.yaml", 9, 11, "K3002"),
        ("agents.yaml", 10, 11, "K3003"),
        ("agents.yaml", 18, 27, "K4008"),
        ("agents.yaml", 19, 13, "K2004"),
        ("crew.yaml", 6, 3, "K2003"),
        ("crew.yaml", 10, 27, "K4004"),
        ("crew.yaml", 13, 29, "K4006"),
        ("crew.yaml", 14, 30, "K3005"),
        ("memory.yaml", 5, 3, "K1007"),
    ]
    keys = [d.sort_key() for d in result.diagnostics]
    assert keys == sorted(keys)


def test_error_in_third_document_is_located_there(tmp_path: Path) -> None:
    tool = (
        "apiVersion: kiln/v1\nkind: Tool\nmetadata: {name: NAME}\nspec:\n  description: d\n"
        "  executor: {type: builtin, function: 'stdlib_tools.noop:run'}\n---\n"
    )
    agent = (
        "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n"
        "  tools: [t1, t2, t3]\n  temprature: 0.2\n"
    )
    text = tool.replace("NAME", "t1") + tool.replace("NAME", "t2") + agent
    result = _compile(tmp_path, {"a.yaml": text})
    assert _all(result) == [("a.yaml", 19, 19, "K3002"), ("a.yaml", 20, 3, "K2003")]


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate", "x"],
        ["validate"],
        ["validate", "--strict", "."],
        ["plan", "diff", "a"],
        ["compile"],
        ["graph", ".", "--format", "svg"],
        ["plan"],
    ],
)
def test_command_line_misuse_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(argv, capsys)
    assert code == 2
    assert "usage:" in err


def test_graph_format_error_names_the_graph_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["graph", ".", "--format", "svg"], capsys)
    assert code == 2
    assert "mermaid" in err and "dot" in err


def test_nonexistent_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, _, err = _cli(["validate", str(missing)], capsys)
    assert code == 1
    assert "K1001" in err and "no such file" in err


def test_a_path_that_is_not_a_regular_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["validate", "/dev/null"], capsys)
    assert code == 1
    assert "no such file" not in err


def test_folder_without_specs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _write(tmp_path / "p", {"notes.txt": "hello"})
    code, _, err = _cli(["validate", str(root)], capsys)
    assert code == 1
    assert "K1010" in err


def _good_project(tmp_path: Path) -> Path:
    return _write(tmp_path / "good", {"a.yaml": RESEARCH_AGENT})


def test_compile_output_into_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _good_project(tmp_path)
    code, _, err = _cli(["compile", str(root), "-o", str(tmp_path)], capsys)
    assert code == 1
    assert "directory" in err.lower()


def test_compile_output_below_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _good_project(tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = _cli(["compile", str(root), "-o", str(blocker / "plan.json")], capsys)
    assert code == 1
    assert "not a directory" in err.lower()


def test_compile_output_into_an_unwritable_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _good_project(tmp_path)
    code, _, err = _cli(["compile", str(root), "-o", "/proc/kiln-plan.json"], capsys)
    assert code == 1
    assert "cannot write" in err


def test_compile_output_into_a_missing_folder_never_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _good_project(tmp_path)
    target = tmp_path / "no" / "such" / "plan.json"
    code, _, _ = _cli(["compile", str(root), "-o", str(target)], capsys)
    assert code in (0, 1)
    assert (code == 0) == target.is_file()


def test_compile_with_errors_writes_no_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write(
        tmp_path / "bad",
        {"a.yaml": "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec: {tols: []}\n"},
    )
    target = tmp_path / "plan.json"
    code, _, err = _cli(["compile", str(root), "-o", str(target), "--explain"], capsys)
    assert code == 1
    assert not target.exists()
    assert "no plan written" in err


def _plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = _good_project(tmp_path)
    plan = tmp_path / "plan.json"
    assert _cli(["compile", str(root), "-o", str(plan)], capsys)[0] == 0
    return plan


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"apiVersion: kiln/v1\nkind: Agent\n", "not a JSON plan"),
        (b"", "not a JSON plan"),
        (b'{"a": 1}', "not a kiln plan"),
        (b"[1, 2]", "not a kiln plan"),
        (b'{"kiln_plan": 1, "specs": "x", "graphs": 5}', "not a kiln plan"),
        (b'{"kiln_plan": "1", "specs": [1, 2], "graphs": {"a": 1}}', "not a kiln plan"),
        (b"\xff\xfe\x00garbage", "not a JSON plan"),
    ],
)
def test_plan_diff_on_files_that_are_not_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, phrase: str
) -> None:
    good = _plans(tmp_path, capsys)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for argv in (["plan", "diff", str(bad), str(good)], ["plan", "diff", str(good), str(bad)]):
        code, _, err = _cli(argv, capsys)
        assert code == 1
        assert phrase in err


def test_plan_diff_on_missing_file_and_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _plans(tmp_path, capsys)
    for other in (tmp_path / "missing.json", tmp_path):
        code, _, err = _cli(["plan", "diff", str(other), str(good)], capsys)
        assert code == 1
        assert "cannot read" in err


def test_plan_diff_of_a_plan_with_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _plans(tmp_path, capsys)
    code, out, _ = _cli(["plan", "diff", str(good), str(good), "--exit-code"], capsys)
    assert code == 0
    assert "No changes" in out


def test_graph_of_broken_specs_and_unknown_crew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(
        tmp_path / "bad",
        {"a.yaml": "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec: {tols: []}\n"},
    )
    assert _cli(["graph", str(bad), "--format", "dot"], capsys)[0] == 1
    good = _good_project(tmp_path)
    code, _, err = _cli(["graph", str(good), "--crew", "research"], capsys)
    assert code == 2
    assert "no crew named 'research'" in err


def test_validate_json_gives_machine_locations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _write(
        tmp_path / "p",
        {"a.yaml": "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec: {tols: []}\n"},
    )
    code, out, _ = _cli(["validate", str(root), "--format", "json"], capsys)
    assert code == 1
    [diag] = json.loads(out)
    assert (diag["line"], diag["col"], diag["code"]) == (4, 8, "K2003")
    assert diag["hint"] == "did you mean 'tools'?"


def test_text_diagnostic_shows_source_and_caret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec:
      instructions: |
        one
        two
        three {{ inputs.nope }}
    """
    code, err = _validate(tmp_path, {"a.yaml": spec}, capsys)
    assert code == 1
    assert "a.yaml:8:14: error[K4004]:" in err
    assert " 8 |     three {{ inputs.nope }}\n   |              ^^^^^^^^^^^\n" in err


def test_literal_url_host_outside_allow_hosts(tmp_path: Path) -> None:
    spec = """
    apiVersion: kiln/v1
    kind: Agent
    metadata: {name: a}
    spec: {tools: [h]}
    ---
    apiVersion: kiln/v1
    kind: Tool
    metadata: {name: h}
    spec:
      description: d
      executor: {type: http, url: "https://evil.example/x", allow_hosts: [api.example.com]}
    """
    result = _compile(tmp_path, {"a.yaml": spec})
    [d] = result.errors
    assert (d.span.line, d.span.col) == (11, 31)
    assert "evil.example" in d.message


def test_output_into_a_closed_pipe_is_not_an_internal_error(tmp_path: Path) -> None:
    agents = "---\n".join(
        f"apiVersion: kiln/v1\nkind: Agent\nmetadata: {{name: a{i}}}\nspec: {{tols: [x]}}\n"
        for i in range(2000)
    )
    root = _write(tmp_path / "p", {"a.yaml": agents})
    code = "import sys; from runtime.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "validate", str(root), "--format", "json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # `kiln validate ... | head -c 10`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) != 3
    assert "internal error" not in err and "Traceback" not in err
