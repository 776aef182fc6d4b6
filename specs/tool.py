"""The ``Tool`` kind: what a tool takes and returns, and how and where it runs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from specs._common import JsonSchema, Metadata, Model, Template

_ENTRYPOINT = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class BuiltinExecutor(Model):
    """Runs in the runtime's own process: for trusted code shipped with kiln."""

    type: Literal["builtin"]
    function: str = Field(pattern=_ENTRYPOINT, description="module:function")


class InprocessExecutor(Model):
    """A Python function of the program that embeds kiln, registered with its engine
    (``Engine(tools=[...])``): called in that program's process, not sandboxed."""

    type: Literal["inprocess"]
    function: str = Field(
        pattern=r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="the name it was registered under",
    )
    source_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="a hash of the function's code, so that the plan changes when it does",
    )


class PythonExecutor(Model):
    """Python run in a sandbox: inline ``code`` defining ``run(**input)``, or an entrypoint."""

    type: Literal["python"]
    code: str | None = None
    entrypoint: str | None = Field(None, pattern=_ENTRYPOINT)
    paths: tuple[str, ...] = Field((), description="folders the entrypoint may be imported from")

    @model_validator(mode="after")
    def _one_source(self) -> PythonExecutor:
        if (self.code is None) == (self.entrypoint is None):
            raise ValueError("give exactly one of 'code' or 'entrypoint'")
        return self


class ShellExecutor(Model):
    """A command run in a sandbox; each argv item is a template, never passed to a shell."""

    type: Literal["shell"]
    argv: tuple[Template, ...] = Field(min_length=1)


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
_TEMPLATED = r"\{\{|\{%"


class HttpExecutor(Model):
    """One HTTP request per call. ``url``, ``headers`` and ``body`` are templates over
    ``input``; ``${env:NAME}`` in them is read when the call is made."""

    type: Literal["http"]
    method: Template = Field(
        "GET",
        description="GET, POST, PUT, PATCH, DELETE or HEAD, or a template making one",
        json_schema_extra={"anyOf": [{"enum": list(HTTP_METHODS)}, {"pattern": _TEMPLATED}]},
    )
    url: Template
    headers: dict[str, Template] = Field(default_factory=dict)
    body: Template | None = None
    timeout_s: float = Field(30, gt=0, le=600)
    allow_hosts: tuple[str, ...] = Field(
        (),
        description="host patterns (fnmatch) the tool may call; empty: only the host the URL "
        "names, or none when a template makes the host",
    )
    max_response_bytes: int = Field(1_000_000, ge=1, le=1 << 30)
    max_attempts: int = Field(3, ge=1, le=10, description="tries of a retryable failure")

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value in HTTP_METHODS or re.search(_TEMPLATED, value):
            return value
        close = f" (did you mean '{value.upper()}'?)" if value.upper() in HTTP_METHODS else ""
        raise ValueError(
            f"expected one of {', '.join(HTTP_METHODS)}, or a template such as "
            f"'{{{{ input.method }}}}'{close}"
        )


class OpenApiExecutor(Model):
    """Every operation of an OpenAPI 3 document (or those listed) becomes a tool."""

    type: Literal["openapi"]
    document: str = Field(min_length=1, description="path of the JSON or YAML document")
    base_url: str | None = Field(None, description="default: the document's first server")
    operations: tuple[str, ...] = Field((), description="operationIds to import; empty: all")
    headers: dict[str, Template] = Field(default_factory=dict)
    timeout_s: float = Field(30, gt=0, le=600)
    allow_hosts: tuple[str, ...] = Field((), description="default: the base URL's host")
    max_response_bytes: int = Field(1_000_000, ge=1, le=1 << 30)
    max_attempts: int = Field(3, ge=1, le=10, description="tries of a retryable failure")


class McpServer(Model):
    transport: Literal["stdio", "http"] = "stdio"
    command: tuple[str, ...] = ()
    url: str | None = None
    env: dict[str, str] = Field(
        default_factory=dict, description="added to a minimal environment; ${env:NAME} allowed"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="http transport only")
    cwd: str | None = None
    startup_timeout_s: float = Field(30, gt=0, le=600)
    call_timeout_s: float = Field(60, gt=0, le=3600)

    @model_validator(mode="after")
    def _endpoint(self) -> McpServer:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio MCP server needs 'command'")
        if self.transport == "http" and not self.url:
            raise ValueError("an http MCP server needs 'url'")
        return self


class McpExecutor(Model):
    type: Literal["mcp"]
    server: McpServer
    tool: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="one tool of the server, named by the tool spec; omit to import them all",
    )
    tools: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="only these tools of the server, each offered as <spec>.<tool>, over one "
        "connection; omit (with tool) to import them all",
    )

    @model_validator(mode="after")
    def _one_choice(self) -> McpExecutor:
        if self.tool is not None and self.tools is not None:
            raise ValueError("give either 'tool' (one tool) or 'tools' (a subset), not both")
        return self


Executor = Annotated[
    BuiltinExecutor
    | InprocessExecutor
    | PythonExecutor
    | ShellExecutor
    | HttpExecutor
    | OpenApiExecutor
    | McpExecutor,
    Field(discriminator="type"),
]


class SandboxLimits(Model):
    backend: Literal["nsjail", "bwrap", "none"] | None = None
    unsafe: bool = Field(False, description="required to run with the 'none' backend")
    network: bool = False
    memory_mb: int = Field(256, ge=16, le=65_536)
    cpu_s: float = Field(5, gt=0, le=3600)
    timeout_s: float = Field(10, gt=0, le=3600)
    max_processes: int = Field(16, ge=1, le=4096)
    max_open_files: int = Field(64, ge=8, le=65_536)
    max_output_bytes: int = Field(1_000_000, ge=1, le=1 << 30)
    workspace: Literal["none", "ro", "rw"] = Field(
        "none",
        description="the run's workspace (where the file tools work) at /workspace, the "
        "working directory: 'ro' to read it, 'rw' to write it too; 'none' (the default): "
        "a private, empty /work",
    )
    folders: tuple[str, ...] = Field(
        (),
        description="project folders, beside or below the spec's file, mounted read-only at "
        "/folders/<name>",
    )


class CachePolicy(Model):
    """Results kept by tool, version and canonical input (never for side-effecting tools)."""

    ttl_s: int = Field(ge=0, le=31_536_000, description="how long a result is kept; 0: never")


#: executors that import tools from elsewhere, each with its own description
IMPORTING = ("mcp", "openapi")


class ToolSpec(Model):
    description: str = Field(
        "", description="what the tool does; imported tools (mcp, openapi) bring their own"
    )
    version: str = "1"
    input_schema: JsonSchema = Field(default_factory=lambda: {"type": "object"})
    output_schema: JsonSchema | None = None
    executor: Executor
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    cache: CachePolicy | None = None
    side_effects: bool = False
    idempotent: bool = Field(
        False,
        description="calling it twice with the same idempotency key does its effect once: a "
        "resumed run may then make a call again that was interrupted",
    )
    requires_approval: bool = False

    @model_validator(mode="after")
    def _described(self) -> ToolSpec:
        if not self.description and self.executor.type not in IMPORTING:
            raise ValueError("a tool needs a description: the model chooses tools by it")
        return self


class Tool(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Tool"]
    metadata: Metadata
    spec: ToolSpec
