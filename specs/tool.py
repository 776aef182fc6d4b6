"""The ``Tool`` kind: what a tool takes and returns, and how and where it runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from specs._common import JsonSchema, Metadata, Model, Template

_ENTRYPOINT = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class BuiltinExecutor(Model):
    """Runs in the runtime's own process: for trusted code shipped with kiln."""

    type: Literal["builtin"]
    function: str = Field(pattern=_ENTRYPOINT, description="module:function")


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


class HttpExecutor(Model):
    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Template
    headers: dict[str, Template] = Field(default_factory=dict)
    body: Template | None = None
    timeout_s: float = Field(30, gt=0, le=600)
    allow_hosts: tuple[str, ...] = ()
    max_response_bytes: int = Field(1_000_000, ge=1, le=1 << 30)


class McpServer(Model):
    transport: Literal["stdio", "http"] = "stdio"
    command: tuple[str, ...] = ()
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

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
    tool: str | None = Field(None, description="one tool of the server; omit to import them all")


Executor = Annotated[
    BuiltinExecutor | PythonExecutor | ShellExecutor | HttpExecutor | McpExecutor,
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


class CachePolicy(Model):
    ttl_s: int = Field(ge=0, le=31_536_000)


class ToolSpec(Model):
    description: str = Field(min_length=1)
    version: str = "1"
    input_schema: JsonSchema = Field(default_factory=lambda: {"type": "object"})
    output_schema: JsonSchema | None = None
    executor: Executor
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    cache: CachePolicy | None = None
    side_effects: bool = False
    requires_approval: bool = False


class Tool(Model):
    api_version: Literal["kiln/v1"] = Field(alias="apiVersion")
    kind: Literal["Tool"]
    metadata: Metadata
    spec: ToolSpec
