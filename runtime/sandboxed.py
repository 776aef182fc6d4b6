"""Tool calls in sandboxes: the :class:`~runtime.tools.ToolExecutor` for ``python`` and
``shell`` tools, on a pool of warm sandboxed workers (:mod:`sandbox`).

The backend is the tool spec's ``sandbox.backend``, else the run's (``kiln run --sandbox``),
else the first of nsjail and bwrap that works here. The ``none`` backend isolates nothing:
it is used only when the tool's spec or the run says ``unsafe``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.templates import environment
from runtime.idempotency import IDEMPOTENCY_KEY
from runtime.tools import Printed, ToolError
from sandbox.backends import ISOLATING
from sandbox.pool import Pool, SandboxError
from sandbox.profile import BackendName, Profile
from specs import Tool
from stdlib_tools.workspace import WorkspaceError
from stdlib_tools.workspace import root as workspace_root


class SandboxExecutor:
    """Runs ``python`` and ``shell`` tools, each call in a pooled sandbox."""

    def __init__(
        self,
        pool: Pool,
        *,
        backend: BackendName | None = None,
        unsafe: bool = False,
        folders: Mapping[str, Path] | None = None,
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.unsafe = unsafe
        #: tool name -> the folder of its spec file (``paths`` are relative to it)
        self.folders = dict(folders or {})
        self._default: BackendName | None = None
        self._profiles: dict[tuple[int, str | None], tuple[Tool, Profile]] = {}

    def profile(self, tool: Tool) -> Profile:
        """The sandbox ``tool`` runs in; for a tool that sees the workspace, the current
        run's (so each run gets workers of its own)."""
        workspace = self._workspace(tool)
        key = (id(tool), workspace)
        cached = self._profiles.get(key)
        if cached is not None and cached[0] is tool:
            return cached[1]
        limits = tool.spec.sandbox
        # the run's choice wins: `--sandbox nsjail` isolates even a tool whose spec says none
        backend = self.backend or limits.backend or self._first_working()
        if backend == "none" and not (limits.unsafe or self.unsafe):
            raise ToolError(
                f"{tool.metadata.name} would run with the 'none' sandbox, which isolates "
                "nothing: set sandbox.unsafe: true in its spec, or run with --unsafe"
            )
        profile = Profile(
            backend=backend,
            network=limits.network,
            memory_mb=limits.memory_mb,
            cpu_s=limits.cpu_s,
            timeout_s=limits.timeout_s,
            max_processes=limits.max_processes,
            max_open_files=limits.max_open_files,
            max_output_bytes=limits.max_output_bytes,
            paths=self._paths(tool),
            workspace=workspace,
            workspace_writable=limits.workspace == "rw",
            folders=self._folders(tool),
        )
        self._profiles[key] = (tool, profile)
        return profile

    async def forget(self, workspace: Path) -> None:
        """A run is over: its workspace's workers go."""
        real = _real(workspace)
        for key in [k for k in self._profiles if k[1] == real]:
            del self._profiles[key]
        await self.pool.forget(real)

    def _workspace(self, tool: Tool) -> str | None:
        if tool.spec.sandbox.workspace == "none":
            return None
        try:
            return str(workspace_root())
        except WorkspaceError as exc:
            raise ToolError(f"{tool.metadata.name}: {exc}") from None

    def _folders(self, tool: Tool) -> tuple[str, ...]:
        return self._inside_spec_folder(tool, tool.spec.sandbox.folders, "folder")

    async def call(
        self, tool: Tool, arguments: Mapping[str, Any], target: str | None = None
    ) -> Any:
        profile = self.profile(tool)
        request = self._request(tool, arguments)
        key = IDEMPOTENCY_KEY.get()
        if key is not None:
            request["idempotency_key"] = key
        try:
            result = await self.pool.call(profile, request)
        except SandboxError as exc:
            raise ToolError(str(exc), retryable=True) from None
        if not result.ok:
            message = result.error or "the call failed"
            if result.reason == "exception" and result.stdout.strip():
                message += f"\n(output before the error: {result.stdout.strip()[-500:]})"
            # a crash may be the machine's fault; a timeout or a limit is the code's own
            raise ToolError(message, retryable=result.reason == "crash")
        if tool.spec.executor.type == "shell":
            return _shell_output(tool, result.output)
        return Printed(result.output, result.stdout) if result.stdout else result.output

    async def warm(self, tools: list[Tool]) -> None:
        """Start a worker for each distinct profile of ``tools`` now (errors are left for
        the calls to report)."""
        profiles = set()
        for tool in tools:
            if _sandboxed(tool):
                try:
                    profiles.add(self.profile(tool))
                except ToolError:
                    continue  # the call will say why
        for profile in profiles:
            try:
                await self.pool.warm(profile)
            except SandboxError:
                pass

    def _request(self, tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
        executor = tool.spec.executor
        if executor.type == "python":
            return {
                "kind": "python",
                "code": executor.code,
                "entrypoint": executor.entrypoint,
                "input": dict(arguments),
            }
        if executor.type == "shell":
            env = environment()
            argv = [env.from_string(item).render(input=arguments) for item in executor.argv]
            return {"kind": "shell", "argv": argv, "input": dict(arguments)}
        raise ToolError(f"{executor.type} tools do not run in a sandbox")

    def _paths(self, tool: Tool) -> tuple[str, ...]:
        executor = tool.spec.executor
        if executor.type != "python" or not executor.paths:
            return ()
        return self._inside_spec_folder(tool, executor.paths, "path")

    def _inside_spec_folder(self, tool: Tool, given: tuple[str, ...], what: str) -> tuple[str, ...]:
        if not given:
            return ()
        base = self.folders.get(tool.metadata.name, Path.cwd()).resolve()
        paths = []
        for path in given:
            resolved = (base / path).resolve()
            if not resolved.is_relative_to(base):  # the compiler says so too (K4015)
                raise ToolError(
                    f"{tool.metadata.name}: {what} {path!r} leaves the folder of its spec; a "
                    "sandbox only ever sees folders beside or below the spec"
                )
            paths.append(str(resolved))
        return tuple(paths)

    def _first_working(self) -> BackendName:
        if self._default is None:
            reasons = []
            for name in ISOLATING:
                problem = self.pool.backend(name).problem()
                if problem is None:
                    self._default = name
                    break
                reasons.append(f"{name}: {problem}")
            else:
                raise ToolError(
                    "no sandbox works on this machine (" + "; ".join(reasons) + "); see "
                    "`kiln sandbox check`, or run with --sandbox none --unsafe"
                )
        return self._default


def _sandboxed(tool: Tool) -> bool:
    return tool.spec.executor.type in ("python", "shell")


def _shell_output(tool: Tool, output: Any) -> Any:
    """A shell tool's result: its stdout as JSON when the tool declares an output schema and
    stdout is JSON, else ``{"stdout", "exit_code"}``; a non-zero exit is an error."""
    if not isinstance(output, dict):
        raise ToolError("the sandbox returned no shell result")
    stdout = str(output.get("stdout", ""))
    code = output.get("exit_code", 0)
    if code != 0:
        tail = stdout.strip()[-500:]
        raise ToolError(f"exited with code {code}" + (f": {tail}" if tail else ""))
    if tool.spec.output_schema is not None:
        try:
            return json.loads(stdout)
        except ValueError:
            pass
    return {"stdout": stdout, "exit_code": code}


def _real(path: Path) -> str:
    return os.path.realpath(path)
