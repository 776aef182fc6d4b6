"""The tool registry: specs, OpenAPI operations and MCP listings under one table of names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from compiler.pipeline import compile_paths
from runtime.tools.registry import Registry
from specs.tool import McpServer
from tests.helpers import WriteSpecs

PETS = """
openapi: 3.1.0
info: {title: Pets, version: "1"}
servers: [{url: "http://127.0.0.1:9/api"}]
paths:
  /pets/{id}:
    get:
      operationId: getPet
      summary: Fetch one pet by its id
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses:
        "200":
          description: the pet
          content:
            application/json:
              schema: {type: object, properties: {name: {type: string}}}
  /pets:
    post:
      operationId: addPet
      summary: Add a pet
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, properties: {name: {type: string}}, required: [name]}
      responses: {"201": {description: added}}
"""

OPENAPI_TOOL = """
apiVersion: kiln/v1
kind: Tool
metadata: {name: pets, labels: {team: zoo}}
spec:
  executor: {type: openapi, document: pets.yaml}
"""

MCP_TOOL = """
apiVersion: kiln/v1
kind: Tool
metadata: {name: clock}
spec:
  executor: {type: mcp, server: {command: [unused]}}
"""


def registry(folder: Path) -> Registry:
    compilation = compile_paths([folder])
    assert compilation.ok and compilation.program is not None, compilation.errors
    return Registry(compilation.program)


def test_spec_tools_and_openapi_operations_share_one_table(write_specs: WriteSpecs) -> None:
    reg = registry(write_specs(**{"pets.yaml": PETS, "tools.yaml": OPENAPI_TOOL}))
    assert reg.problems == []
    assert reg.names_of("pets") == frozenset({"pets__getPet", "pets__addPet"})
    assert reg.names_of("calculator") == frozenset({"calculator"})
    get = reg.get("pets__getPet")
    assert get is not None
    assert (get.qualified, get.spec, get.target, get.origin) == (
        "pets.getPet",
        "pets",
        "getPet",
        "openapi",
    )
    assert get.labels == {"team": "zoo"}
    assert "Fetch one pet" in get.description
    assert "id" in get.input_schema["properties"]
    bound = reg.bound("pets")
    assert sorted(bound) == ["pets__addPet", "pets__getPet"]
    assert bound["pets__getPet"].target == "getPet"
    assert reg.bind("pets__getPet") is bound["pets__getPet"]  # validators compiled once
    assert "pets getPet" in get.search_text()


def test_a_listed_subset_of_operations(write_specs: WriteSpecs) -> None:
    tool = OPENAPI_TOOL.replace("document: pets.yaml", "document: pets.yaml, operations: [addPet]")
    reg = registry(write_specs(**{"pets.yaml": PETS, "tools.yaml": tool}))
    assert reg.names_of("pets") == frozenset({"pets__addPet"})


def test_a_spec_named_like_an_operation_is_a_compile_error(write_specs: WriteSpecs) -> None:
    clash = (
        "---\napiVersion: kiln/v1\nkind: Tool\nmetadata: {name: pets__addpet}\nspec:\n"
        "  description: A tool whose name an imported operation also maps to.\n"
        '  executor: {type: builtin, function: "stdlib_tools.word_count:run"}\n'
    )
    pets = PETS.replace("operationId: addPet", "operationId: addpet")
    folder = write_specs(**{"pets.yaml": pets, "tools.yaml": OPENAPI_TOOL + clash})
    compilation = compile_paths([folder])
    assert [d.code for d in compilation.errors] == ["K4020"]
    assert "'pets.addpet'" in compilation.errors[0].message


@dataclass
class FakeListing:
    """What a hub returns for a listing (the real hub is tested against real servers)."""

    name: str
    description: str = "a tool"
    input_schema: Any = None
    output_schema: Any = None
    annotations: dict[str, Any] = field(default_factory=dict)


class ListingHub:
    def __init__(self, tools: list[FakeListing]) -> None:
        self.tools = tools
        self.listed: list[str] = []

    async def list_tools(
        self, key: str, server: McpServer, *, folder: Path | None = None
    ) -> list[FakeListing]:
        self.listed.append(key)
        return self.tools


def load(reg: Registry, hub: ListingHub) -> list[str]:
    async def go() -> list[str]:
        return [str(p) for p in await reg.load(hub, None)]  # type: ignore[arg-type]

    return anyio.run(go)


def test_mcp_tools_are_unknown_until_listed_then_mapped(write_specs: WriteSpecs) -> None:
    reg = registry(write_specs(**{"tools.yaml": MCP_TOOL}))
    assert reg.names_of("clock") is None
    assert reg.unlisted() == ["clock"]
    hub = ListingHub(
        [
            FakeListing("now", input_schema={"type": "object", "properties": {}}),
            FakeListing("zones.list"),
            FakeListing("x" * 128),
        ]
    )
    assert load(reg, hub) == []
    names = reg.names_of("clock")
    assert names is not None and "clock__now" in names
    for name in names:
        entry = reg.get(name)
        assert entry is not None and len(name) <= 64
        assert entry.qualified == f"clock.{entry.target}"
    assert reg.unlisted() == []
    assert load(reg, hub) == [] and hub.listed == ["clock"]  # listed once


def test_one_tool_of_a_server_takes_the_spec_name(write_specs: WriteSpecs) -> None:
    spec = MCP_TOOL.replace("command: [unused]}", "command: [unused]}, tool: now")
    reg = registry(write_specs(**{"tools.yaml": spec}))
    assert load(reg, ListingHub([FakeListing("now"), FakeListing("later")])) == []
    assert reg.names_of("clock") == frozenset({"clock"})
    entry = reg.get("clock")
    assert entry is not None and entry.target == "now"


def test_a_listed_tool_named_like_a_spec_is_refused_with_its_place(
    write_specs: WriteSpecs,
) -> None:
    clash = (
        "---\napiVersion: kiln/v1\nkind: Tool\nmetadata: {name: clock__now}\nspec:\n"
        "  description: A tool whose name a listed MCP tool also maps to.\n"
        '  executor: {type: builtin, function: "stdlib_tools.word_count:run"}\n'
    )
    folder = write_specs(**{"tools.yaml": MCP_TOOL + clash})
    reg = registry(folder)
    (problem,) = load(reg, ListingHub([FakeListing("now"), FakeListing("later")]))
    assert "'clock.now'" in problem and "'clock__now'" in problem and "rename" in problem
    assert problem.startswith(str(folder / "tools.yaml") + ":")
    assert reg.names_of("clock") == frozenset({"clock__later"})  # the rest is still there


@pytest.mark.parametrize(
    ("listing", "expected"),
    [
        ([FakeListing("later")], "has no tool 'now' (it has: later)"),
        ([FakeListing("now", input_schema={"type": 12})], "invalid input schema"),
    ],
)
def test_listing_problems_name_the_spec(
    write_specs: WriteSpecs, listing: list[FakeListing], expected: str
) -> None:
    spec = MCP_TOOL.replace("command: [unused]}", "command: [unused]}, tool: now")
    reg = registry(write_specs(**{"tools.yaml": spec}))
    (problem,) = load(reg, ListingHub(listing))
    assert "tool 'clock'" in problem and expected in problem


def test_side_effects_follow_the_method_unless_the_spec_says(write_specs: WriteSpecs) -> None:
    reg = registry(write_specs(**{"pets.yaml": PETS, "tools.yaml": OPENAPI_TOOL}))
    assert reg.bind("pets__getPet").side_effects is False
    assert reg.bind("pets__addPet").side_effects is True  # a POST changes something
    said = OPENAPI_TOOL.replace("spec:\n", "spec:\n  side_effects: false\n")
    reg = registry(write_specs(**{"pets.yaml": PETS, "tools.yaml": said}))
    assert reg.bind("pets__addPet").side_effects is False


def test_mcp_tools_have_side_effects_unless_marked_read_only(write_specs: WriteSpecs) -> None:
    reg = registry(write_specs(**{"tools.yaml": MCP_TOOL}))
    listing = [FakeListing("now"), FakeListing("peek", annotations={"readOnlyHint": True})]
    assert load(reg, ListingHub(listing)) == []
    assert reg.bind("clock__now").side_effects is True
    assert reg.bind("clock__peek").side_effects is False
