"""OpenAPI documents read as tools (specs/openapi.py), and the compiler's checks of openapi
tool specs (K4017, K4018, K4019)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from compiler.pipeline import compile_paths
from specs.openapi import (
    MAX_SCHEMA_NODES,
    OpenApiError,
    Param,
    base_url,
    load_document,
    operation_ids,
    operations,
    survey,
)
from tests.helpers import REPO, WriteSpecs

PETSTORE = REPO / "tests" / "fixtures" / "petstore.yaml"


def _doc(tmp_path: Path, text: str, name: str = "api.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _api(paths: dict[str, Any], components: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": components or {},
    }


def _get(schema: Any = None, **op: Any) -> dict[str, Any]:
    """A path item with one GET operation whose 200 response has ``schema``."""
    response: dict[str, Any] = {"description": "ok"}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    responses = {"200": response}
    return {"get": {"operationId": "op", "responses": responses, **op}}


# -- loading ---------------------------------------------------------------------------------------


def test_the_petstore_document_loads_with_its_operations_in_order() -> None:
    document = load_document(PETSTORE)
    assert operation_ids(document) == [
        "listPets",
        "addPet",
        "getPet",
        "deletePet",
        "get_pets_petId_card",  # no operationId: named by method and path
    ]


def test_a_yaml_syntax_error_says_where(tmp_path: Path) -> None:
    path = _doc(tmp_path, "openapi: 3.0.0\npaths:\n  /a: [unclosed\n")
    with pytest.raises(OpenApiError) as caught:
        load_document(path)
    # the end of the file, on its last line (libyaml says the line after it: #12 item 15)
    assert (caught.value.path, caught.value.line) == (str(path), 3)
    assert "YAML syntax error" in caught.value.message
    assert str(caught.value).startswith(f"{path}:3:")


def test_a_json_syntax_error_says_where(tmp_path: Path) -> None:
    path = _doc(tmp_path, '{\n  "openapi": "3.0.0",\n  "paths": {,}\n}\n', "api.json")
    with pytest.raises(OpenApiError) as caught:
        load_document(path)
    assert (caught.value.line, caught.value.col) == (3, 13)
    assert caught.value.message.startswith("invalid JSON")


def test_a_json_document_loads(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_text(json.dumps(_api({"/a": _get({"type": "string"})})), encoding="utf-8")
    (op,) = operations(load_document(path))
    assert (op.id, op.method, op.output_schema) == ("op", "GET", {"type": "string"})


def test_yaml_tags_and_alias_bombs_are_refused(tmp_path: Path) -> None:
    tagged = _doc(tmp_path, "openapi: !!python/object:os.system 3.0.0\npaths: {}\n")
    with pytest.raises(OpenApiError, match="tag"):
        load_document(tagged)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = _doc(tmp_path, "\n".join(["openapi: 3.0.0", *lines]) + "\n", "bomb.yaml")
    with pytest.raises(OpenApiError, match="alias"):
        load_document(bomb)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("swagger: '2.0'\npaths: {}\n", "Swagger 2.0 document; only OpenAPI 3.0 and 3.1"),
        ("openapi: 2.9.1\npaths: {}\n", "'openapi: 2.9.1' is not an OpenAPI 3.0 or 3.1"),
        ("info: {title: x}\n", "not an OpenAPI document: it has no 'openapi' field"),
        ("openapi: 3.0.0\npaths: [a]\n", "'paths' is not a mapping"),
        ("- openapi\n", "the document is not a mapping"),
        ("", "the document is empty"),
    ],
)
def test_documents_that_are_not_openapi_3_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(OpenApiError) as caught:
        load_document(_doc(tmp_path, text) if text else _empty(tmp_path))
    assert message in caught.value.message


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    return path


def test_a_missing_document_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OpenApiError) as caught:
        load_document(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_base_url_is_the_first_server_with_its_variables() -> None:
    assert base_url(load_document(PETSTORE)) == "http://127.0.0.1:8080"
    assert base_url({"servers": [{"url": "/api/v3"}]}) is None  # relative: nothing to call
    assert base_url({"servers": []}) is None
    assert base_url({"servers": [{"url": "https://api.example.com/v1"}]}) == (
        "https://api.example.com/v1"
    )


# -- operations ------------------------------------------------------------------------------------


def test_parameters_and_body_become_one_input_schema() -> None:
    ops = {op.id: op for op in operations(load_document(PETSTORE))}
    listed = ops["listPets"]
    assert listed.params == (Param("limit", "query", False), Param("tag", "query", False))
    assert listed.input_schema["properties"]["limit"] == {
        "description": "at most this many pets",
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    assert "required" not in listed.input_schema
    assert listed.description == "List the pets in the store.\n\nNewest first; filter by tag."
    # a path-item parameter, by $ref, with 3.0's boolean exclusiveMinimum made 2020-12's
    got = ops["getPet"]
    assert (got.method, got.path, got.params) == (
        "GET",
        "/pets/{petId}",
        (Param("petId", "path", True),),
    )
    assert got.input_schema == {
        "type": "object",
        "properties": {
            "petId": {"description": "the pet's id", "type": "integer", "exclusiveMinimum": 0}
        },
        "additionalProperties": False,
        "required": ["petId"],
    }
    deleted = ops["deletePet"]
    assert deleted.params[1] == Param("X-Request-Id", "header", False)
    assert deleted.output_schema is None  # 204: no body


def test_the_json_body_goes_under_body_without_read_only_fields() -> None:
    added = {op.id: op for op in operations(load_document(PETSTORE))}["addPet"]
    assert (added.body, added.body_required) == (True, True)
    body = added.input_schema["properties"]["body"]
    assert added.input_schema["required"] == ["body"]
    assert body["description"] == "the pet to add"
    assert set(body["properties"]) == {"name", "tag", "status"}  # id is readOnly: the server's
    assert body["required"] == ["name"]
    assert body["properties"]["tag"] == {"type": ["string", "null"]}  # 3.0 nullable
    assert "x-internal-note" not in body["properties"]["status"]
    # the response keeps id: it is read
    assert added.output_schema is not None
    assert added.output_schema["required"] == ["id", "name"]
    assert added.output_schema["properties"]["id"] == {"type": "integer", "readOnly": True}


@pytest.mark.parametrize(
    ("schema", "converted"),
    [
        ({"type": "string", "nullable": True}, {"type": ["string", "null"]}),
        ({"type": ["integer"], "nullable": True}, {"type": ["integer", "null"]}),
        (
            {"type": "string", "enum": ["a"], "nullable": True},
            {"type": ["string", "null"], "enum": ["a", None]},
        ),
        ({"nullable": True, "minLength": 1}, {"anyOf": [{"minLength": 1}, {"type": "null"}]}),
        (
            {"type": "number", "maximum": 5, "exclusiveMaximum": True},
            {"type": "number", "exclusiveMaximum": 5},
        ),
        (
            {"type": "number", "minimum": 5, "exclusiveMinimum": False},
            {"type": "number", "minimum": 5},
        ),
        ({"type": "string", "example": "x", "xml": {}}, {"type": "string", "examples": ["x"]}),
    ],
)
def test_openapi_3_0_schemas_become_json_schema_2020_12(schema: Any, converted: Any) -> None:
    (op,) = operations(_api({"/a": _get(schema)}))
    assert op.output_schema == converted


def test_refs_are_inlined_and_31_ref_siblings_kept() -> None:
    document = _api(
        {"/a": _get({"$ref": "#/components/schemas/A", "description": "the A"})},
        {
            "schemas": {
                "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
                "B": {"type": "integer"},
            }
        },
    )
    (op,) = operations(document)
    assert op.output_schema == {
        "type": "object",
        "properties": {"b": {"type": "integer"}},
        "description": "the A",
    }


def test_an_operation_without_operation_id_is_named_by_method_and_path() -> None:
    item = {"post": {"responses": {"201": {"description": "made"}}}}
    (op,) = operations(
        _api(
            {
                "/users/{user-id}/keys": {
                    **item,
                    "parameters": [
                        {
                            "name": "user-id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                }
            }
        )
    )
    assert op.id == "post_users_user_id_keys"


def _problem(document: dict[str, Any]) -> OpenApiError:
    found, problems = survey(document)
    assert not found and len(problems) == 1, problems
    return problems[0]


def test_remote_refs_are_refused() -> None:
    problem = _problem(_api({"/a": _get({"$ref": "https://example.com/schemas.json#/Pet"})}))
    assert "points outside the document" in problem.message
    assert problem.operation == "op"


def test_a_ref_to_nothing_is_an_error() -> None:
    problem = _problem(_api({"/a": _get({"$ref": "#/components/schemas/Pett"})}))
    assert (
        problem.message
        == "operation 'op': $ref '#/components/schemas/Pett' points to nothing in the document"
    )


def test_a_recursive_schema_is_refused_naming_the_cycle(tmp_path: Path) -> None:
    path = _doc(
        tmp_path,
        """
        openapi: 3.1.0
        paths:
          /tree:
            get:
              operationId: tree
              responses:
                "200":
                  description: ok
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Node"}
        components:
          schemas:
            Node:
              type: object
              properties:
                kids: {type: array, items: {$ref: "#/components/schemas/Kid"}}
            Kid: {$ref: "#/components/schemas/Node"}
        """,
    )
    problem = _problem(load_document(path))
    assert "#/components/schemas/Node → #/components/schemas/Kid → #/components/schemas/Node" in (
        problem.message
    )
    assert (problem.path, problem.line) == (str(path), 18)  # where the cycle closes


def test_a_ref_cycle_between_objects_is_refused() -> None:
    document = _api(
        {
            "/a": {
                "get": {
                    "operationId": "op",
                    "parameters": [{"$ref": "#/components/parameters/P"}],
                    "responses": {},
                }
            }
        },
        {
            "parameters": {
                "P": {"$ref": "#/components/parameters/Q"},
                "Q": {"$ref": "#/components/parameters/P"},
            }
        },
    )
    assert "$ref cycle" in _problem(document).message


def test_refs_that_fan_out_stop_at_the_node_budget() -> None:
    schemas: dict[str, Any] = {"S0": {"type": "string"}}
    for i in range(1, 20):  # each level uses the one below twice: 2**19 nodes inlined
        ref = {"$ref": f"#/components/schemas/S{i - 1}"}
        schemas[f"S{i}"] = {"type": "object", "properties": {"a": ref, "b": ref}}
    problem = _problem(
        _api({"/a": _get({"$ref": "#/components/schemas/S19"})}, {"schemas": schemas})
    )
    assert f"more than {MAX_SCHEMA_NODES:,} nodes" in problem.message


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "id", "in": "query", "schema": {"type": "string"}},
                ]
            },
            "parameter 'id' (query) has the name of another (path)",
        ),
        (
            {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "body", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            },
            "a parameter is named 'body'",
        ),
        ({"parameters": []}, "path parameter '{id}' is not declared"),
        (
            {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "session", "in": "cookie", "required": True},
                ]
            },
            "cookie parameter 'session' is required",
        ),
        (
            {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {"multipart/form-data": {}}},
            },
            "the request body must be JSON, not multipart/form-data",
        ),
    ],
)
def test_operations_that_cannot_be_tools(operation: dict[str, Any], message: str) -> None:
    document = _api({"/things/{id}": {"post": {"operationId": "op", "responses": {}, **operation}}})
    assert message in _problem(document).message


def test_header_parameters_the_specification_ignores_are_left_out() -> None:
    params = [
        {"name": "Accept", "in": "header", "schema": {"type": "string"}},
        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
    ]
    (op,) = operations(_api({"/a": _get(None, parameters=params)}))
    assert op.params == (Param("X-Trace", "header", False),)


def test_two_operations_with_one_id_are_an_error() -> None:
    found, problems = survey(_api({"/a": _get(), "/b": _get()}))
    assert [op.path for op in found] == ["/a"]
    assert [p.message for p in problems] == ["two operations are named 'op'"]


def test_only_the_operations_asked_for_are_built() -> None:
    document = _api(
        {
            "/good": {"get": {"operationId": "good", "responses": {}}},
            "/bad": _get({"$ref": "#/nowhere"}),
        }
    )
    assert [op.id for op in operations(document, ["good"])] == ["good"]
    with pytest.raises(OpenApiError, match="points to nothing"):
        operations(document)
    with pytest.raises(OpenApiError, match="no operation 'godo' \\(did you mean 'good'\\?\\)"):
        operations(document, ["godo"])


# -- the compiler's checks -------------------------------------------------------------------------

AGENT = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: clerk}
spec:
  instructions: You look after the store.
  tools: [pets]
"""


def _tool(executor: str) -> str:
    return (
        "apiVersion: kiln/v1\nkind: Tool\nmetadata: {name: pets}\nspec:\n  executor:\n"
        + textwrap.indent(textwrap.dedent(executor), "    ")
    )


def test_a_valid_openapi_tool_compiles(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "t.yaml": _tool(f"type: openapi\ndocument: {PETSTORE}\noperations: [getPet, addPet]\n"),
        }
    )
    result = compile_paths([folder])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]


def test_k4018_an_unknown_operation_is_reported_where_it_is_listed(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "petstore.yaml": PETSTORE.read_text(encoding="utf-8"),
            "t.yaml": _tool(
                "type: openapi\ndocument: petstore.yaml\noperations: [getPet, addPets]\n"
            ),
        }
    )
    # the document is a YAML file in the spec folder: it is loaded as a spec too and fails
    # as one; the tool's own diagnostic is what this test is about
    (diag,) = [d for d in compile_paths([folder / "a.yaml", folder / "t.yaml"]).diagnostics]
    assert diag.code == "K4018"
    assert (Path(diag.span.path).name, diag.span.line, diag.span.col) == ("t.yaml", 8, 26)
    assert diag.message == (
        "tool 'pets' imports operation 'addPets', which its document (petstore.yaml) does not have"
    )
    assert diag.hint == "did you mean 'addPet'?"


def test_k4017_a_document_that_is_not_openapi(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "api.json": '{"swagger": "2.0", "paths": {}}',
            "t.yaml": _tool("type: openapi\ndocument: api.json\n"),
        }
    )
    (diag,) = compile_paths([folder]).diagnostics
    assert diag.code == "K4017"
    assert (diag.span.line, diag.span.col) == (7, 15)
    assert "Swagger 2.0 document" in diag.message


def test_k4017_no_server_to_call(write_specs: WriteSpecs) -> None:
    api = json.dumps({**_api({"/a": _get()}), "servers": [{"url": "/v1"}]})
    folder = write_specs(
        **{"a.yaml": AGENT, "api.json": api, "t.yaml": _tool("type: openapi\ndocument: api.json\n")}
    )
    (diag,) = compile_paths([folder]).diagnostics
    assert diag.code == "K4017" and "names no absolute server URL" in diag.message
    assert diag.hint is not None and "base_url" in diag.hint
    fixed = write_specs(
        **{
            "a.yaml": AGENT,
            "api.json": api,
            "t.yaml": _tool(
                "type: openapi\ndocument: api.json\nbase_url: https://api.example.com/v1\n"
            ),
        }
    )
    assert compile_paths([fixed]).ok


def test_k4012_base_url_outside_allow_hosts(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "t.yaml": _tool(
                f"type: openapi\ndocument: {PETSTORE}\nallow_hosts: [api.example.com]\n"
            ),
        }
    )
    (diag,) = compile_paths([folder]).diagnostics
    assert diag.code == "K4012" and "calls host '127.0.0.1' (its base URL)" in diag.message


def test_k4019_broken_operations_each_reported(write_specs: WriteSpecs) -> None:
    api = _api(
        {
            "/a": _get({"$ref": "#/components/schemas/Nope"}),
            "/b": {
                "get": {
                    "operationId": "bad_schema",
                    "responses": {
                        "200": {
                            "description": "x",
                            "content": {"application/json": {"schema": {"type": "strin"}}},
                        }
                    },
                }
            },
            "/c": {"get": {"operationId": "fine", "responses": {}}},
        }
    )
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "api.json": json.dumps(api),
            "t.yaml": _tool("type: openapi\ndocument: api.json\nbase_url: https://x.example\n"),
        }
    )
    diags = compile_paths([folder]).diagnostics
    assert [d.code for d in diags] == ["K4019", "K4019"]
    ref, schema = sorted(d.message for d in diags)
    assert "operation 'op': $ref '#/components/schemas/Nope' points to nothing" in ref
    assert "the output schema of operation 'bad_schema' (GET /b) is not a valid JSON" in schema
    # listing only the good operation compiles
    folder = write_specs(
        **{
            "a.yaml": AGENT,
            "api.json": json.dumps(api),
            "t.yaml": _tool(
                "type: openapi\ndocument: api.json\nbase_url: https://x.example\n"
                "operations: [fine]\n"
            ),
        }
    )
    assert compile_paths([folder]).ok
