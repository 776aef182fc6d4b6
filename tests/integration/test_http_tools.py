"""HTTP and OpenAPI tools against a real Starlette app served by uvicorn on a free loopback
port (tests/fixtures/petstore_app.py): requests built from templates, the error paths, the
host rules, and an agent calling both kinds in a run with the scripted model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from compiler.pipeline import compile_paths
from runtime.tools import BoundTool, ToolBox, ToolError, ToolOutcome, bind
from runtime.tools.box import ToolRetry
from runtime.tools.http import HttpToolExecutor, literal_host
from runtime.tools.registry import Registry
from specs import Tool
from tests.fixtures.petstore_app import DOCUMENT, serve
from tests.helpers import REPO, WriteSpecs
from tests.runtime_kit import agent, run_specs

_keys = itertools.count()


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    with serve() as base:
        yield base


def _tool(executor: Mapping[str, Any], name: str = "probe", **spec: Any) -> Tool:
    return Tool.model_validate(
        {
            "apiVersion": "kiln/v1",
            "kind": "Tool",
            "metadata": {"name": name},
            "spec": {"description": "A probe.", "executor": dict(executor), **spec},
        }
    )


def _stdlib(name: str) -> Tool:
    text = (REPO / "stdlib_tools" / f"{name}.yaml").read_text(encoding="utf-8")
    return Tool.model_validate(yaml.safe_load(text))


def _call(
    tool: Tool,
    arguments: Mapping[str, Any],
    *,
    target: str | None = None,
    allow_hosts: tuple[str, ...] = (),
    folders: Mapping[str, Path] | None = None,
) -> Any:
    async def go() -> Any:
        executor = HttpToolExecutor(folders=folders, allow_hosts=allow_hosts)
        try:
            return await executor.call(tool, arguments, target)
        finally:
            await executor.aclose()

    return anyio.run(go)


def _refused(tool: Tool, arguments: Mapping[str, Any], **kw: Any) -> ToolError:
    with pytest.raises(ToolError) as caught:
        _call(tool, arguments, **kw)
    return caught.value


class _Box:
    """Tools called through a real ToolBox (validation, retries), waits recorded."""

    def __init__(self, tools: Mapping[str, BoundTool], allow_hosts: tuple[str, ...] = ()):
        self.tools = tools
        self.allow_hosts = allow_hosts
        self.waits: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def call(self, name: str, arguments: Mapping[str, Any], folders: Any = None) -> ToolOutcome:
        async def go() -> ToolOutcome:
            executor = HttpToolExecutor(folders=folders, allow_hosts=self.allow_hosts)
            box = ToolBox(
                self.tools,
                {"http": executor, "openapi": executor},
                retry=ToolRetry(jitter=False),
                sleep=self._sleep,
            )
            try:
                return await box.call(name, dict(arguments))
            finally:
                await executor.aclose()

        return anyio.run(go)


def _boxed(tool: Tool, arguments: Mapping[str, Any]) -> tuple[ToolOutcome, list[float]]:
    box = _Box({tool.metadata.name: bind(tool)})
    return box.call(tool.metadata.name, arguments), box.waits


# -- requests from templates -----------------------------------------------------------------


def test_get_renders_the_url_and_reads_headers_from_the_environment(
    app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("KILN_TEST_UNSET", raising=False)
    tool = _tool(
        {
            "type": "http",
            "url": app + "/echo?q={{ input.q | urlencode }}&n={{ input.n }}",
            "headers": {
                "X-Token": "Bearer ${env:KILN_TEST_TOKEN}",
                "X-Absent": "${env:KILN_TEST_UNSET}",  # unset: the header is left out
                "X-Empty": "{{ input.missing }}",  # renders empty: left out
            },
        }
    )
    result = _call(tool, {"q": "cats & dogs", "n": 3})
    assert result["status"] == 200
    assert result["content_type"] == "application/json"
    echoed = result["json"]
    assert echoed["method"] == "GET"
    assert echoed["query"] == [["q", "cats & dogs"], ["n", "3"]]
    assert echoed["headers"] == {"x-token": "Bearer s3cret"}


def test_post_sends_the_rendered_body_and_input_never_reads_the_environment(
    app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_TEST_TOKEN", "s3cret")
    tool = _tool(
        {
            "type": "http",
            "method": "POST",
            "url": app + "/echo",
            "body": '{"name": {{ input.name | tojson }}, "tags": {{ input.tags | tojson }}}',
        }
    )
    result = _call(tool, {"name": "${env:KILN_TEST_TOKEN}", "tags": ["a", "b"]})
    echoed = result["json"]
    assert echoed["method"] == "POST"
    assert echoed["content_type"] == "application/json"  # the body parses as JSON
    assert echoed["body"] == '{"name": "${env:KILN_TEST_TOKEN}", "tags": ["a", "b"]}'
    assert "s3cret" not in str(result)


def test_an_unset_variable_in_the_url_is_a_clear_error(
    app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILN_TEST_UNSET", raising=False)
    tool = _tool({"type": "http", "url": app + "/echo?key=${env:KILN_TEST_UNSET}"})
    error = _refused(tool, {})
    assert str(error) == (
        "probe: its url reads the environment variable KILN_TEST_UNSET, which is not set"
    )


def test_http_request_takes_its_method_and_body_from_input(app: str) -> None:
    tool = _stdlib("http_request")
    run = ("127.0.0.1",)
    put = _call(
        tool, {"method": "PUT", "url": app + "/echo", "json": {"a": [1, 2]}}, allow_hosts=run
    )
    assert put["json"]["method"] == "PUT"
    assert put["json"]["content_type"] == "application/json"
    assert put["json"]["body"] == '{"a": [1, 2]}'
    patch = _call(tool, {"method": "PATCH", "url": app + "/echo", "text": "hi"}, allow_hosts=run)
    assert patch["json"]["content_type"] == "text/plain; charset=utf-8"
    assert patch["json"]["body"] == "hi"
    get = _call(tool, {"method": "GET", "url": app + "/echo"}, allow_hosts=run)
    assert (get["json"]["method"], get["json"]["body"], get["json"]["content_type"]) == (
        "GET",
        "",
        None,
    )


def test_http_get_opens_no_host_until_the_run_allows_it(app: str) -> None:
    tool = _stdlib("http_get")
    error = _refused(tool, {"url": app + "/text"})
    assert "host '127.0.0.1' is not allowed (allowed: none)" in str(error)
    assert "kiln run --allow-host" in str(error)
    result = _call(tool, {"url": app + "/text"}, allow_hosts=("127.0.0.1",))
    assert result == {
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "plain words\n",
    }


def test_a_binary_body_is_not_shown_as_text(app: str) -> None:
    result = _call(_tool({"type": "http", "url": app + "/image"}), {})
    assert result["text"] == "(108 bytes of image/png, not shown)"


# -- error paths -----------------------------------------------------------------------------


def test_404_is_a_clear_error_and_not_retried(app: str) -> None:
    outcome, waits = _boxed(
        _tool({"type": "http", "url": app + "/pets/{{ input.id }}"}), {"id": 99}
    )
    assert (outcome.status, outcome.retryable, outcome.attempts) == ("error", False, 1)
    assert outcome.error == (
        f'probe: GET {app}/pets/99 answered 404 Not Found: {{"code":404,"message":"no pet 99"}}'
    )
    assert waits == []


def test_500_is_retryable_and_the_box_retries_it_until_it_succeeds(app: str) -> None:
    key = f"k{next(_keys)}"
    tool = _tool({"type": "http", "url": app + "/flaky/" + key + "?fail=2"})
    error = _refused(tool, {})  # the executor itself never retries
    assert error.retryable and error.retry_after is None
    assert "answered 500 Internal Server Error: failure 1 of 2" in str(error)
    outcome, waits = _boxed(tool, {})  # calls 2 (fails) and 3 (works)
    assert outcome.status == "ok", outcome.error
    assert outcome.output["json"] == {"key": key, "calls": 3}
    assert outcome.attempts == 2 and len(waits) == 1


def test_500_past_max_attempts_is_an_error_saying_so(app: str) -> None:
    key = f"k{next(_keys)}"
    tool = _tool({"type": "http", "url": f"{app}/flaky/{key}?fail=9", "max_attempts": 3})
    outcome, waits = _boxed(tool, {})
    assert (outcome.status, outcome.retryable, outcome.attempts) == ("error", True, 3)
    assert outcome.error is not None and outcome.error.endswith("(failed 3 times)")
    assert len(waits) == 2


def test_503_brings_its_retry_after(app: str) -> None:
    tool = _tool({"type": "http", "url": app + "/busy", "max_attempts": 2})
    error = _refused(tool, {})
    assert (error.retryable, error.retry_after) == (True, 7.0)
    outcome, waits = _boxed(tool, {})
    assert waits == [7.0]  # the box waited as the server asked
    assert outcome.attempts == 2


def test_a_post_that_failed_with_500_is_not_retried_when_it_has_side_effects(app: str) -> None:
    key = f"k{next(_keys)}"
    tool = _tool({"type": "http", "url": f"{app}/flaky/{key}?fail=1"}, side_effects=True)
    outcome, waits = _boxed(tool, {})
    assert (outcome.status, outcome.attempts, waits) == ("error", 1, [])


def test_a_slow_answer_times_out_as_retryable(app: str) -> None:
    tool = _tool({"type": "http", "url": app + "/slow?seconds=3", "timeout_s": 0.3})
    error = _refused(tool, {})
    assert error.retryable
    assert str(error) == f"probe: GET {app}/slow took longer than its 0.3 s"


def test_an_oversized_body_is_refused_while_streaming(app: str) -> None:
    tool = _tool({"type": "http", "url": app + "/big?bytes=300000", "max_response_bytes": 100_000})
    error = _refused(tool, {})
    assert not error.retryable
    assert str(error) == (
        f"probe: the response of GET {app}/big is larger than 100,000 bytes (max_response_bytes)"
    )
    small = _tool({"type": "http", "url": app + "/big?bytes=90000", "max_response_bytes": 100_000})
    assert len(_call(small, {})["text"]) == 90_000


def test_an_oversized_body_with_a_content_length_is_refused_before_reading(app: str) -> None:
    tool = _tool({"type": "http", "url": app + "/text", "max_response_bytes": 5})
    assert "larger than 5 bytes" in str(_refused(tool, {}))


def test_a_refused_connection_is_safe_to_retry(app: str) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _refused(_tool({"type": "http", "url": f"http://127.0.0.1:{port}/x"}), {})
    assert error.retryable and error.safe_to_retry
    assert f"GET http://127.0.0.1:{port}/x: cannot connect" in str(error)


# -- hosts -----------------------------------------------------------------------------------


def test_a_host_outside_allow_hosts_is_refused(app: str) -> None:
    tool = _tool({"type": "http", "url": "{{ input.url }}", "allow_hosts": ["api.example.com"]})
    error = _refused(tool, {"url": app + "/text"})
    assert not error.retryable
    assert str(error).startswith(
        "probe: host '127.0.0.1' is not allowed (allowed: api.example.com); add it to the "
        "tool's allow_hosts"
    )


def test_a_templated_host_is_refused_without_allow_hosts(app: str) -> None:
    tool = _tool({"type": "http", "url": "{{ input.url }}"})
    assert "host '127.0.0.1' is not allowed (allowed: none)" in str(
        _refused(tool, {"url": app + "/text"})
    )
    # input cannot move the host of a URL that writes it out either
    sneaky = _tool({"type": "http", "url": "http://127.0.0.1{{ input.path }}"})
    error = _refused(sneaky, {"path": "@localhost/text"})
    assert "host 'localhost' is not allowed" in str(error)


def test_the_literal_host_of_a_url_is_allowed() -> None:
    assert literal_host("https://api.example.com/v1/{{ input.id }}") == "api.example.com"
    assert literal_host("https://api.example.com?q={{ input.q }}") == "api.example.com"
    assert literal_host("https://{{ input.host }}/x") is None
    assert literal_host("https://api.example.com{{ input.path }}") is None
    assert literal_host("https://${env:API_HOST}/x") is None
    assert literal_host("{{ input.url }}") is None


def test_a_redirect_to_a_host_not_allowed_is_refused(app: str) -> None:
    port = app.rsplit(":", 1)[1]
    tool = _tool({"type": "http", "url": app + "/redirect?to={{ input.to | urlencode }}"})
    error = _refused(tool, {"to": f"http://localhost:{port}/text"})
    assert "was redirected to host 'localhost', which is not allowed (allowed: 127.0.0.1)" in str(
        error
    )
    same_host = _call(tool, {"to": "/text"})
    assert same_host["text"] == "plain words\n"


def test_redirects_stop_after_five(app: str) -> None:
    error = _refused(_tool({"type": "http", "url": app + "/loop"}), {})
    assert str(error) == f"probe: GET {app}/loop redirected more than 5 times"


def test_headers_are_not_sent_on_to_another_host(app: str) -> None:
    port = app.rsplit(":", 1)[1]
    tool = _tool(
        {
            "type": "http",
            "url": app + "/redirect?to={{ input.to | urlencode }}",
            "headers": {"X-Secret": "only for 127.0.0.1"},
            "allow_hosts": ["127.0.0.1", "localhost"],
        }
    )
    there = _call(tool, {"to": f"http://localhost:{port}/echo"})
    assert there["json"]["path"] == "/echo" and there["json"]["headers"] == {}
    here = _call(tool, {"to": "/echo"})
    assert here["json"]["headers"] == {"x-secret": "only for 127.0.0.1"}


def test_a_wildcard_does_not_open_the_machines_own_network(app: str) -> None:
    tool = _tool({"type": "http", "url": "{{ input.url }}", "allow_hosts": ["*"]})
    error = _refused(tool, {"url": app + "/text"})
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in str(error)
    assert not error.retryable
    port = app.rsplit(":", 1)[1]
    by_name = _tool({"type": "http", "url": "{{ input.url }}", "allow_hosts": ["local*"]})
    assert "localhost resolves to" in str(
        _refused(by_name, {"url": f"http://localhost:{port}/text"})
    )
    # named exactly (here by the run), the address is allowed
    ok = _call(by_name, {"url": f"http://localhost:{port}/text"}, allow_hosts=("localhost",))
    assert ok["status"] == 200


def test_only_http_and_https_are_called() -> None:
    tool = _tool({"type": "http", "url": "{{ input.url }}", "allow_hosts": ["*"]})
    for url in ("file:///etc/passwd", "ftp://example.com/x"):
        assert "only http and https URLs are called" in str(_refused(tool, {"url": url}))


# -- OpenAPI ---------------------------------------------------------------------------------


def _petstore(base: str, operations: str = "[]") -> str:
    return f"""\
apiVersion: kiln/v1
kind: Tool
metadata: {{name: pets}}
spec:
  executor:
    type: openapi
    document: {DOCUMENT}
    base_url: {base}
    operations: {operations}
"""


def _registry(write_specs: WriteSpecs, base: str) -> tuple[Registry, Path]:
    folder = write_specs(**{"a.yaml": agent(tools="[pets]"), "t.yaml": _petstore(base)})
    compilation = compile_paths([folder])
    assert compilation.ok and compilation.program is not None, compilation.diagnostics
    registry = Registry(compilation.program)
    assert not registry.problems, registry.problems
    return registry, folder


def test_openapi_operations_are_listed_as_tools(app: str, write_specs: WriteSpecs) -> None:
    registry, _ = _registry(write_specs, app)
    tools = registry.bound("pets")
    assert sorted(tools) == [
        "pets__addPet",
        "pets__deletePet",
        "pets__getPet",
        "pets__get_pets_petId_card",
        "pets__listPets",
    ]
    assert tools["pets__getPet"].target == "getPet"
    assert tools["pets__getPet"].description == "Find a pet by its id."
    assert set(tools["pets__listPets"].input_schema["properties"]) == {"limit", "tag"}
    assert tools["pets__addPet"].input_schema["required"] == ["body"]


def test_openapi_operations_are_called_with_their_parameters(
    app: str, write_specs: WriteSpecs
) -> None:
    registry, _ = _registry(write_specs, app)
    box = _Box(registry.bound("pets"))
    got = box.call("pets__getPet", {"petId": 1})
    assert (got.status, got.output) == (
        "ok",
        {"id": 1, "name": "Rex", "tag": "dog", "status": "available"},
    )
    added = box.call("pets__addPet", {"body": {"name": "Tom", "tag": None}})
    assert added.status == "ok", added.error
    assert added.output["name"] == "Tom" and added.output["id"] >= 2
    listed = box.call("pets__listPets", {"limit": 1})
    assert listed.status == "ok" and len(listed.output) == 1
    dogs = box.call("pets__listPets", {"tag": "dog"})
    assert [p["name"] for p in dogs.output] == ["Rex"]
    card = box.call("pets__get_pets_petId_card", {"petId": 1})
    assert card.output == {
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "Rex (dog)",
    }
    # input is checked against the operation's schema before anything is sent
    bad = box.call("pets__addPet", {"body": {"name": ""}})
    assert bad.status == "invalid_input"
    gone = box.call("pets__deletePet", {"petId": added.output["id"], "X-Request-Id": "r1"})
    assert gone.status == "ok" and gone.output["status"] == 204


def test_an_openapi_error_answer_is_clear(app: str, write_specs: WriteSpecs) -> None:
    registry, _ = _registry(write_specs, app)
    outcome = _Box(registry.bound("pets")).call("pets__getPet", {"petId": 404})
    assert (outcome.status, outcome.retryable) == ("error", False)
    assert outcome.error == (
        f'pets: GET {app}/pets/404 answered 404 Not Found: {{"code":404,"message":"no pet 404"}}'
    )


def test_an_openapi_tool_calls_only_its_base_urls_host(app: str) -> None:
    port = app.rsplit(":", 1)[1]
    tool = _tool(
        {"type": "openapi", "document": str(DOCUMENT), "base_url": f"http://localhost:{port}"},
        name="pets",
        description="",
    )
    result = _call(tool, {"petId": 1}, target="getPet")
    assert result["name"] == "Rex"
    wrong = _tool(
        {
            "type": "openapi",
            "document": str(DOCUMENT),
            "base_url": f"http://localhost:{port}",
            "allow_hosts": ["api.example.com"],
        },
        name="pets",
    )
    assert "host 'localhost' is not allowed" in str(_refused(wrong, {"petId": 1}, target="getPet"))
    assert "has no operation 'nope'" in str(_refused(tool, {}, target="nope"))


def test_an_unknown_operation_is_a_compile_error(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[pets]"),
            "t.yaml": _petstore("http://127.0.0.1:9", "[getPet, deletePets]"),
        }
    )
    result = compile_paths([folder])
    assert not result.ok
    (diag,) = result.diagnostics
    assert (diag.code, diag.span.line) == ("K4018", 9)
    assert "imports operation 'deletePets', which its document" in diag.message
    assert diag.hint == "did you mean 'deletePet'?"


# -- in a run --------------------------------------------------------------------------------


def test_an_agent_calls_an_http_tool_and_an_openapi_operation(
    app: str, write_specs: WriteSpecs
) -> None:
    fetcher = f"""\
apiVersion: kiln/v1
kind: Tool
metadata: {{name: card}}
spec:
  description: The name card of a pet.
  input_schema: {{type: object, properties: {{id: {{type: integer}}}}, required: [id]}}
  executor: {{type: http, url: "{app}/pets/{{{{ input.id }}}}/card"}}
"""
    folder = write_specs(
        **{"a.yaml": agent(tools="[pets, card]"), "t.yaml": _petstore(app), "c.yaml": fetcher}
    )
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: look it up, tool: pets__getPet, input: {petId: 1}}
          - {thought: and its card, tool: card, input: {id: 1}}
          - {thought: done, final: "Rex, a dog"}
        """,
    )
    assert ran.result.ok, ran.result.error
    pet, card = ran.of("tool.result")
    assert (pet.data["status"], pet.data["output"]["name"]) == ("ok", "Rex")
    assert (card.data["status"], card.data["output"]["text"]) == ("ok", "Rex (dog)")
