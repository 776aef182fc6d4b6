"""The standard tool library: each tool's work, its refusals, and its spec."""

from __future__ import annotations

import importlib
import inspect
import os
import resource
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from compiler.passes.load import stdlib_dir
from compiler.pipeline import compile_paths
from stdlib_tools import (
    calculator,
    current_time,
    file_list,
    file_read,
    file_write,
    json_query,
    jsonpath,
    text_search,
    workspace,
)
from stdlib_tools.jsonpath import JsonPathError

MINE = (
    *("calculator", "current_time", "word_count", "file_read", "file_write", "file_list"),
    *("text_search", "json_query", "python"),
)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    """A workspace for the file tools, set as the runtime sets it for a run."""
    folder = tmp_path / "ws"
    folder.mkdir()
    token = workspace.WORKSPACE.set(folder)
    yield folder
    workspace.WORKSPACE.reset(token)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the workspace, holding a secret the tools must never reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("the secret word is swordfish\n")
    return folder


def search(**arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = anyio.run(partial(text_search.run, **arguments))
    return result


# -- the specs ------------------------------------------------------------------------------


def test_every_stdlib_spec_compiles_without_a_diagnostic() -> None:
    compiled = compile_paths([])
    folder = str(stdlib_dir())
    assert compiled.program is not None
    assert [d for d in compiled.diagnostics if d.span.path.startswith(folder)] == []
    for name in MINE:
        tool = compiled.program.tool(name)
        assert tool.metadata.labels.get("stdlib") == "true", name
        assert tool.metadata.labels.get("category"), name
        assert len(tool.spec.description) > 40, name
        schema = tool.spec.input_schema
        assert schema.get("additionalProperties") is False, name
        assert tool.spec.output_schema is not None, name


def test_builtin_specs_name_functions_whose_defaults_match_the_schema() -> None:
    program = compile_paths([]).program
    assert program is not None
    builtins = [n for n in MINE if program.tool(n).spec.executor.type == "builtin"]
    assert len(builtins) == 8
    for name in builtins:
        tool = program.tool(name)
        executor = tool.spec.executor
        assert executor.type == "builtin"
        module, _, attr = executor.function.partition(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        parameters = inspect.signature(function).parameters
        properties = tool.spec.input_schema["properties"]
        assert set(parameters) == set(properties), name
        assert set(tool.spec.input_schema.get("required", ())) == {
            p for p, v in parameters.items() if v.default is inspect.Parameter.empty
        }, name
        for key, parameter in parameters.items():
            if "default" in properties[key]:
                assert properties[key]["default"] == parameter.default, (name, key)


def test_side_effects_and_sandbox_are_declared() -> None:
    program = compile_paths([]).program
    assert program is not None
    assert program.tool("file_write").spec.side_effects is True
    assert program.tool("file_read").spec.side_effects is False
    python = program.tool("python").spec
    assert python.executor.type == "python"
    assert python.sandbox.network is False


# -- calculator -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(2 + 3) * sqrt(16)", 20.0),
        ("7 // 2 + 7 % 2", 4),
        ("2 ** 10", 1024),
        ("-2 ** 2", -4),
        ("round(pi, 3)", 3.142),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("factorial(5)", 120),
        ("floor(2.7) + ceil(2.1)", 5),
        ("1 ** 10 ** 20", 1),
        ("10 ** 999 // 10 ** 998", 10),
    ],
)
def test_calculator_evaluates(expression: str, expected: float) -> None:
    assert calculator.run(expression) == {"result": expected}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("9**9**9", "more than 1000 digits"),
        ("(10**999) * (10**999)", "more than 1000 digits"),
        ("factorial(449) * 1000", "more than 1000 digits"),
        ("factorial(10000)", "factorial takes one whole number from 0 to 449"),
        ("1 / 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "0 cannot be raised to a negative power"),
        ("(-8) ** (1/3)", "complex number"),
        ("2.0 ** 100000", "too large for a floating-point number"),
        ("10 ** 999 / 3", "too large for a floating-point number"),
        ("1e308 * 10", "the result is too large"),
        ("sqrt(-1)", "sqrt(-1) is undefined (math domain error)"),
        ("round(5, -10 ** 9)", "round's digits must be between"),
        ("-" * 500 + "1", "nests deeper than 100 levels"),
        ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
        ("x + 1", "unknown name 'x'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("(1).real", "unsupported expression"),
        ("1 << 64", "unsupported operator <<"),
        ("2 + * 3", "not an arithmetic expression at column 5: invalid syntax"),
        ("(1", "not an arithmetic expression at column 1: '(' was never closed"),
        ("1" * 1001, "longer than 1000 characters"),
        ("True + 1", "unsupported expression: True"),
        ("'a' * 3", "unsupported expression: 'a'"),
    ],
)
def test_calculator_refuses_with_a_clear_message(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        calculator.run(expression)


# -- current_time ---------------------------------------------------------------------------


def test_current_time_in_a_zone() -> None:
    now = current_time.run("Asia/Tokyo")
    assert now["timezone"] == "Asia/Tokyo"
    assert datetime.fromisoformat(now["iso"]).utcoffset() is not None
    assert now["iso"].endswith("+09:00")
    assert current_time.run()["iso"].endswith("+00:00")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../../etc/passwd", "", "x" * 300])
def test_current_time_unknown_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone .*use an IANA name"):
        current_time.run(zone)


# -- the workspace --------------------------------------------------------------------------


def test_no_workspace_is_a_clear_error() -> None:
    with pytest.raises(workspace.WorkspaceError, match="no workspace is set for this run"):
        file_read.run("a.txt")


def test_the_workspace_folder_is_made_when_first_needed(tmp_path: Path) -> None:
    token = workspace.WORKSPACE.set(tmp_path / "runs" / "r1")
    try:
        assert file_list.run() == {"path": ".", "entries": [], "truncated": False}
        assert (tmp_path / "runs" / "r1").is_dir()
        workspace.WORKSPACE.set(tmp_path / "runs" / "r1" / "file")
        (tmp_path / "runs" / "r1" / "file").write_text("not a folder")
        with pytest.raises(workspace.WorkspaceError, match="cannot be made: File exists"):
            file_read.run("x")
    finally:
        workspace.WORKSPACE.reset(token)


def test_resolve_stays_inside(ws: Path) -> None:
    (ws / "a").mkdir()
    (ws / "a" / "b.txt").write_text("x")
    assert workspace.resolve("a/b.txt", must_exist=True) == ws.resolve() / "a" / "b.txt"
    assert workspace.resolve("a/../a/./b.txt", must_exist=True).name == "b.txt"
    assert workspace.resolve(".", must_exist=True) == ws.resolve()
    assert workspace.resolve("new/file.txt", must_exist=False).name == "file.txt"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../x", r"leads outside the workspace \(through '..'\)"),
        ("a/../../x", "leads outside the workspace"),
        ("..", "leads outside the workspace"),
        ("/etc/passwd", "is absolute"),
        ("etc/passwd", r"outside the workspace \(through a symbolic link\)"),
        ("passwd", "through a symbolic link"),
        ("up/outside/secret.txt", "through a symbolic link"),
        ("bad\x00name", "contains a NUL character"),
        ("pipe", "is a special file"),
        ("missing.txt", "no file or folder 'missing.txt' in the workspace"),
        ("x" * 5000, "longer than 4096 characters"),
    ],
)
def test_paths_that_escape_or_are_special_are_refused(
    ws: Path, outside: Path, path: str, message: str
) -> None:
    (ws / "etc").symlink_to("/etc")
    (ws / "passwd").symlink_to("/etc/passwd")
    (ws / "up").symlink_to(outside.parent)
    os.mkfifo(ws / "pipe")
    for tool in (file_read.run, partial(file_list.run, recursive=True)):
        with pytest.raises(workspace.WorkspaceError, match=message):
            tool(path)


def test_a_symlink_inside_the_workspace_is_followed(ws: Path) -> None:
    (ws / "real.txt").write_text("inside")
    (ws / "alias.txt").symlink_to(ws / "real.txt")
    assert file_read.run("alias.txt")["content"] == "inside"
    assert file_read.run("alias.txt")["path"] == "real.txt"


# -- file_read ------------------------------------------------------------------------------


def test_file_read_whole_and_in_slices(ws: Path) -> None:
    (ws / "notes.txt").write_text("héllo wörld\n", encoding="utf-8")
    whole = file_read.run("notes.txt")
    assert whole == {
        "path": "notes.txt",
        "content": "héllo wörld\n",
        "size": 14,
        "offset": 0,
        "next_offset": 14,
        "truncated": False,
    }
    # a slice never ends inside a character: 'h' + half of 'é' stops after 'h'
    first = file_read.run("notes.txt", max_bytes=2)
    assert (first["content"], first["next_offset"], first["truncated"]) == ("h", 1, True)
    pieces, offset = [], 0
    while True:
        part = file_read.run("notes.txt", offset=offset, max_bytes=3)
        pieces.append(part["content"])
        offset = part["next_offset"]
        if not part["truncated"]:
            break
    assert "".join(pieces) == "héllo wörld\n"
    assert file_read.run("notes.txt", offset=100)["content"] == ""


def test_file_read_invalid_utf8_is_replaced(ws: Path) -> None:
    (ws / "latin.txt").write_bytes(b"caf\xe9\n")
    assert file_read.run("latin.txt")["content"] == "caf\ufffd\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "bin.dat"}, "looks like a binary file"),
        ({"path": "folder"}, "'folder' is a folder"),
        ({"path": "notes.txt", "offset": -1}, "offset must be 0 or more"),
        ({"path": "notes.txt", "max_bytes": 0}, "max_bytes must be between 1 and"),
        ({"path": "notes.txt", "max_bytes": 10**9}, "max_bytes must be between 1 and"),
    ],
)
def test_file_read_refuses(ws: Path, arguments: dict[str, Any], message: str) -> None:
    (ws / "notes.txt").write_text("text")
    (ws / "bin.dat").write_bytes(b"\x7fELF\x00\x00\x01")
    (ws / "folder").mkdir()
    with pytest.raises(ValueError, match=message):
        file_read.run(**arguments)


# -- file_write -----------------------------------------------------------------------------


def test_file_write_creates_overwrites_and_appends(ws: Path) -> None:
    made = file_write.run("out/deep/report.md", "# Title\n")
    assert made == {"path": "out/deep/report.md", "bytes_written": 8, "size": 8, "created": True}
    again = file_write.run("out/deep/report.md", "# New\n")
    assert (again["created"], again["size"]) == (False, 6)
    more = file_write.run("out/deep/report.md", "body ✓\n", mode="append")
    assert (more["bytes_written"], more["size"]) == (9, 15)
    assert (ws / "out/deep/report.md").read_text() == "# New\nbody ✓\n"
    assert sorted(p.name for p in (ws / "out/deep").iterdir()) == ["report.md"]


def test_file_write_keeps_the_mode_of_the_file_it_replaces(ws: Path) -> None:
    script = ws / "run.sh"
    script.write_text("old")
    script.chmod(0o751)
    file_write.run("run.sh", "new")
    assert (script.read_text(), script.stat().st_mode & 0o777) == ("new", 0o751)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": ".", "content": "x"}, "is a folder"),
        ({"path": "sub", "content": "x"}, "is a folder"),
        ({"path": "plain.txt/inner.txt", "content": "x"}, "a part of it is a file"),
        ({"path": "a.txt", "content": "x", "mode": "prepend"}, "mode must be 'overwrite' or"),
        ({"path": "a.txt", "content": "\ud800"}, "unpaired surrogate at character 0"),
        ({"path": "../a.txt", "content": "x"}, "leads outside the workspace"),
        ({"path": "/tmp/a.txt", "content": "x"}, "is absolute"),
        ({"path": "out/x.txt", "content": "x"}, "through a symbolic link"),
        ({"path": "pw", "content": "x"}, "through a symbolic link"),
    ],
)
def test_file_write_refuses(
    ws: Path, outside: Path, arguments: dict[str, Any], message: str
) -> None:
    (ws / "sub").mkdir()
    (ws / "plain.txt").write_text("p")
    (ws / "out").symlink_to(outside)
    (ws / "pw").symlink_to(outside / "secret.txt")
    with pytest.raises(ValueError, match=message):
        file_write.run(**arguments)
    assert (outside / "secret.txt").read_text() == "the secret word is swordfish\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_file_write_size_limit(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "MAX_WRITE_BYTES", 10)
    file_write.run("log.txt", "123456")
    with pytest.raises(ValueError, match="would be 12 bytes, over the limit of 10"):
        file_write.run("log.txt", "123456", mode="append")
    with pytest.raises(ValueError, match="would be 11 bytes"):
        file_write.run("log.txt", "x" * 11)
    assert (ws / "log.txt").read_text() == "123456"


def test_a_failed_overwrite_leaves_the_old_file_and_no_temporary_file(ws: Path) -> None:
    (ws / "data.txt").write_text("the old text")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # the kernel refuses to grow any file past 1 kB (Python ignores SIGXFSZ: EFBIG instead)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        with pytest.raises(ValueError, match="cannot write 'data.txt': File too large"):
            file_write.run("data.txt", "x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (ws / "data.txt").read_text() == "the old text"
    assert [p.name for p in ws.iterdir()] == ["data.txt"]


# -- file_list ------------------------------------------------------------------------------


def _tree(ws: Path, outside: Path) -> None:
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "main.py").write_text("print('hi')\n")
    (ws / "src" / "pkg" / "util.py").write_text("x = 1\n")
    (ws / "README.md").write_text("# Read me\n")
    (ws / "data.csv").write_text("a,b\n1,2\n")
    (ws / "away").symlink_to(outside)


def test_file_list_one_folder(ws: Path, outside: Path) -> None:
    _tree(ws, outside)
    listed = file_list.run()
    assert listed["path"] == "."
    assert listed["truncated"] is False
    assert [(e["path"], e["type"], e["size"]) for e in listed["entries"]] == [
        ("README.md", "file", 10),
        ("away", "symlink", None),
        ("data.csv", "file", 8),
        ("src", "folder", None),
    ]


def test_file_list_recursive_with_a_pattern_never_follows_links(ws: Path, outside: Path) -> None:
    _tree(ws, outside)
    every = file_list.run(recursive=True)
    paths = [e["path"] for e in every["entries"]]
    assert paths == sorted(paths)
    assert "src/pkg/util.py" in paths
    assert not any("secret" in p for p in paths)
    python = file_list.run(".", pattern="*.py", recursive=True)
    assert [e["path"] for e in python["entries"]] == ["src/main.py", "src/pkg/util.py"]
    assert [e["name"] for e in python["entries"]] == ["main.py", "util.py"]
    nested = file_list.run("src", pattern="pkg/*.py", recursive=True)
    assert [e["path"] for e in nested["entries"]] == ["src/pkg/util.py"]
    limited = file_list.run(recursive=True, limit=2)
    assert (len(limited["entries"]), limited["truncated"]) == (2, True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "README.md"}, "is a file, not a folder"),
        ({"path": "away"}, "through a symbolic link"),
        ({"limit": 0}, "limit must be between 1 and"),
    ],
)
def test_file_list_refuses(
    ws: Path, outside: Path, arguments: dict[str, Any], message: str
) -> None:
    _tree(ws, outside)
    with pytest.raises(ValueError, match=message):
        file_list.run(**arguments)


# -- text_search ----------------------------------------------------------------------------


def test_text_search_finds_lines(ws: Path, outside: Path) -> None:
    _tree(ws, outside)
    (ws / "notes.txt").write_text("first line\nthe Secret is here\r\nlast\n")
    (ws / "image.bin").write_bytes(b"secret\x00\x01\x02")
    found = search(pattern="secret", ignore_case=True)
    assert found == {
        "matches": [{"file": "notes.txt", "line": 2, "column": 5, "text": "the Secret is here"}],
        "truncated": False,
        "files_searched": 5,
        "files_skipped": 1,
    }
    assert search(pattern="secret")["matches"] == []


def test_text_search_regex_glob_and_limits(ws: Path, outside: Path) -> None:
    _tree(ws, outside)
    found = search(pattern=r"^(print|x)\b", regex=True, glob="*.py")
    assert [(m["file"], m["line"], m["text"]) for m in found["matches"]] == [
        ("src/main.py", 1, "print('hi')"),
        ("src/pkg/util.py", 1, "x = 1"),
    ]
    assert search(pattern="x", path="src/pkg/util.py")["files_searched"] == 1
    below = search(pattern="1", path="src", glob="pkg/*")
    assert [m["file"] for m in below["matches"]] == ["src/pkg/util.py"]
    (ws / "many.txt").write_text("hit\n" * 50)
    capped = search(pattern="hit", max_results=3)
    assert (len(capped["matches"]), capped["truncated"]) == (3, True)
    (ws / "long.txt").write_text("a" * 5000 + "NEEDLE" + "b" * 5000)
    (long,) = search(pattern="NEEDLE")["matches"]
    assert long["column"] == 5001
    assert "NEEDLE" in long["text"] and len(long["text"]) <= text_search.MAX_LINE_SHOWN + 2


def test_text_search_skips_huge_files(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace, "MAX_SEARCH_FILE_BYTES", 100)
    (ws / "small.txt").write_text("needle\n")
    (ws / "big.txt").write_text("needle\n" * 100)
    found = search(pattern="needle")
    assert [m["file"] for m in found["matches"]] == ["small.txt"]
    assert found["files_skipped"] == 1


def test_a_backtracking_regex_is_stopped(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_search, "TIMEOUT_S", 0.5)
    (ws / "trap.txt").write_text("a" * 60 + "!\n")
    with pytest.raises(ValueError, match=r"took longer than 0.5 s and was stopped"):
        search(pattern="(a+)+$", regex=True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pattern": "(unclosed", "regex": True}, "invalid regular expression at position 1"),
        ({"pattern": "x" * 501}, "longer than 500 characters"),
        ({"pattern": ""}, "pattern is empty"),
        ({"pattern": "x", "max_results": 0}, "max_results must be between 1 and"),
        ({"pattern": "x", "path": "../"}, "leads outside the workspace"),
        ({"pattern": "swordfish", "path": "away"}, "through a symbolic link"),
    ],
)
def test_text_search_refuses(
    ws: Path, outside: Path, arguments: dict[str, Any], message: str
) -> None:
    _tree(ws, outside)
    with pytest.raises(ValueError, match=message):
        search(**arguments)


def test_text_search_never_reads_through_links(ws: Path, outside: Path) -> None:
    _tree(ws, outside)
    (ws / "secret-link.txt").symlink_to(outside / "secret.txt")
    found = search(pattern="swordfish")
    assert found["matches"] == []


# -- json_query -----------------------------------------------------------------------------

STORE = {
    "store": {
        "book": [
            {"title": "Sayings", "price": 8.95, "tags": ["old"]},
            {"title": "Sword", "price": 12.99, "author": {"name": "Waugh"}},
            {"title": "Moby", "price": 8.99, "isbn": "0-553"},
            {"title": "Rings", "price": 22.99, "isbn": "0-395", "in_stock": True},
        ],
        "bicycle": {"color": "red", "price": 19.95},
        "odd key": {"it's": 1},
    },
    "counts": [0, 1, 2, 3, 4, 5],
}


@pytest.mark.parametrize(
    ("query", "values"),
    [
        ("$", [STORE]),
        ("$.store.bicycle.color", ["red"]),
        ("$['store']['bicycle']['color']", ["red"]),
        ('$["store"].bicycle["price"]', [19.95]),
        ("$['store']['odd key']['it\\'s']", [1]),
        ("$.store.book[0].title", ["Sayings"]),
        ("$.store.book[-1].title", ["Rings"]),
        ("$.store.book[9].title", []),
        ("$.store.book[*].title", ["Sayings", "Sword", "Moby", "Rings"]),
        ("$.store.book.*.price", [8.95, 12.99, 8.99, 22.99]),
        ("$..price", [8.95, 12.99, 8.99, 22.99, 19.95]),
        ("$..name", ["Waugh"]),
        ("$..book[1].author.name", ["Waugh"]),
        ("$.counts..[0]", [0]),
        ("$.store.book[0]..*", ["Sayings", 8.95, ["old"], "old"]),
        ("$.counts[1:3]", [1, 2]),
        ("$.counts[::2]", [0, 2, 4]),
        ("$.counts[::-2]", [5, 3, 1]),
        ("$.counts[-2:]", [4, 5]),
        ("$.counts[:2]", [0, 1]),
        ("$.counts[0,5,-1]", [0, 5, 5]),
        ("$.store.book[0,1]['title','price']", ["Sayings", 8.95, "Sword", 12.99]),
        ("$.store.book[?(@.price < 10)].title", ["Sayings", "Moby"]),
        ("$.store.book[?(@.price <= 8.99)].title", ["Sayings", "Moby"]),
        ("$.store.book[?(@.price > 20)].title", ["Rings"]),
        ("$.store.book[?(@.price >= 22.99)].title", ["Rings"]),
        ("$.store.book[?(@.title == 'Moby')].price", [8.99]),
        ('$.store.book[?(@.title != "Moby")].price', [8.95, 12.99, 22.99]),
        ("$.store.book[?(@.isbn)].title", ["Moby", "Rings"]),
        ("$.store.book[?(!@.isbn)].title", ["Sayings", "Sword"]),
        ("$.store.book[?(@.isbn && @.price > 10)].title", ["Rings"]),
        ("$.store.book[?(@.tags || @.author)].title", ["Sayings", "Sword"]),
        ("$.store.book[?((@.price < 9 || @.price > 20) && !@.tags)].title", ["Moby", "Rings"]),
        ("$.store.book[?(@.in_stock == true)].title", ["Rings"]),
        ("$.store.book[?(@.author.name == 'Waugh')].title", ["Sword"]),
        ("$.store.book[?(@.price == $.store.book[2].price)].title", ["Moby"]),
        ("$.store.book[? @.price > 20 ].title", ["Rings"]),
        ("$.counts[?(@ > 3)]", [4, 5]),
        ("$.counts[?(@ == true)]", []),  # true is not 1 in JSON
        ("$.store.book[?(@.price < 'x')].title", []),  # numbers never order with strings
        ("$..book[?(@.isbn)].isbn", ["0-553", "0-395"]),
        ("$.missing.deeper", []),
        ("$.store.bicycle[0]", []),
    ],
)
def test_json_query_selects(query: str, values: list[Any]) -> None:
    result = json_query.run(STORE, query)
    assert result["values"] == values
    assert result["count"] == len(values)
    assert result["truncated"] is False


def test_json_query_paths_and_json_text() -> None:
    result = json_query.run('{"a": [{"b": 1}, {"b": 2}], "it\'s": 0}', "$.a[*].b")
    assert result == {
        "values": [1, 2],
        "paths": ["$['a'][0]['b']", "$['a'][1]['b']"],
        "count": 2,
        "truncated": False,
    }
    assert json_query.run({"it's": 5}, "$.*")["paths"] == ["$['it\\'s']"]
    assert json_query.run([1, [2, [3]]], "$..*")["values"] == [1, [2, [3]], 2, [3], 3]
    assert json_query.run("[1, 2]", "$[1]")["values"] == [2]


def test_json_query_caps_the_values_returned() -> None:
    result = json_query.run(list(range(5000)), "$[*]")
    assert (len(result["values"]), result["count"], result["truncated"]) == (1000, 5000, True)


def test_json_query_deep_data_does_not_overflow() -> None:
    deep: Any = "bottom"
    for _ in range(5000):
        deep = {"x": deep}
    assert json_query.run(deep, "$..x")["count"] == 5000


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("store.book", 1, "a query starts with '$', found 's'"),
        ("$.", 3, "expected a member name or * after '.', the query ends"),
        ("$..", 4, "expected a member name or * after '..', the query ends"),
        ("$[", 3, "expected a quoted name, an index, a slice, * or a filter ?(...)"),
        ("$.a[1", 4, "'[' is never closed by ']'"),
        ("$.a[1 2]", 7, "expected ',' or ']', found '2'"),
        ("$['a", 3, "the string is never closed by '"),
        ("$['a\\q']", 5, "unknown escape \\q"),
        ("$[?(@.a = 1)]", 9, "'=' is not a comparison: write '=='"),
        ("$[?(@.a == )]", 12, "expected @, $, a number, a quoted string, true, false or null"),
        ("$[?(@.a == 1]", 13, "expected ')', found ']'"),
        ("$[?(@.a == 1", 4, "'(' is never closed by ')'"),
        ("$[?(1)]", 5, "a value alone is not a condition"),
        ("$[1:2:0]", 7, "a slice's step cannot be 0"),
        ("$.a b", 5, "unexpected 'b'"),
        ("$[?(" + "(" * 40 + "@.a" + ")" * 40 + ")]", 36, "the filter nests deeper than 32"),
        ("$[99999999999999999999]", 3, "index too large"),
    ],
)
def test_json_query_syntax_errors_name_the_column(query: str, column: int, message: str) -> None:
    with pytest.raises(JsonPathError) as caught:
        json_query.run({}, query)
    assert caught.value.column == column
    assert str(caught.value).startswith(f"JSONPath syntax error at column {column}: {message}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '{"a": [1, 2}',
            "data is a string but not JSON text: Expecting ',' delimiter at line 1 column 12",
        ),
        ("not json", "data is a string but not JSON text"),
    ],
)
def test_json_query_bad_json_text(data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        json_query.run(data, "$")


# -- python (the tool's own code, run here without a sandbox) -------------------------------


def _python_run() -> Callable[..., Any]:
    program = compile_paths([]).program
    assert program is not None
    executor = program.tool("python").spec.executor
    assert executor.type == "python" and executor.code is not None
    namespace: dict[str, Any] = {}
    exec(compile(executor.code, "<python tool>", "exec"), namespace)
    run: Callable[..., Any] = namespace["run"]
    return run


def test_python_tool_result_and_capture(capsys: pytest.CaptureFixture[str]) -> None:
    run = _python_run()
    assert run(code="print('hi')\n2 + 3") == {"stdout": "hi\n", "stderr": "", "result": 5}
    assert run(code="result = [1, {'a': None}]\n'ignored'")["result"] == [1, {"a": None}]
    assert run(code="x = 1")["result"] is None
    assert run(code="import sys\nsys.stderr.write('careful')")["stderr"] == "careful"
    assert run(code="object")["result"] == "<class 'object'>"
    assert run(code="float('nan')")["result"] == "nan"
    big = run(code="print('x' * 150_000)")["stdout"]
    assert big.endswith("[... 50001 more characters not kept]")
    assert capsys.readouterr().out == ""  # nothing leaked to the real stdout


def test_python_tool_errors(capsys: pytest.CaptureFixture[str]) -> None:
    run = _python_run()
    with pytest.raises(ZeroDivisionError):
        run(code="print('before')\nx = 1\ny = x / 0\n")
    # what it printed and where it failed go to the real stdout, which the sandbox reports
    assert capsys.readouterr().out == "before\nline 3: y = x / 0"
    with pytest.raises(SyntaxError):
        run(code="def f(:\n")
    with pytest.raises(ValueError, match="over the limit of 200,000: print a summary"):
        run(code="'x' * 300_000")


def test_a_long_sum_is_a_chain_not_nesting() -> None:
    assert calculator.run(expression="+".join(["1"] * 300)) == {"result": 300}


def test_a_filter_with_a_whole_document_query_is_evaluated_once() -> None:
    # $..a inside the filter does not depend on @: one walk, not one per candidate
    data = [{"a": i, "b": {"c": i}} for i in range(2_000)]
    found = jsonpath.evaluate(jsonpath.parse("$[?($..a)]"), data)
    assert len(found) == 2_000
    with pytest.raises(jsonpath.JsonPathError, match="visits more than"):
        jsonpath.evaluate(jsonpath.parse("$..[?(@..c)]"), [data] * 300)
