"""Pass 5, check: the resolved program is meaningful, not just well formed.

Each check is a module of its own and yields diagnostics; this runs them in order.
"""

from __future__ import annotations

from collections.abc import Mapping

from compiler.diagnostics import Diagnostic
from compiler.passes.check.cycles import check_cycles
from compiler.passes.check.hosts import check_builtins, check_hosts
from compiler.passes.check.memory import check_addresses, check_memory, check_shared_memory
from compiler.passes.check.models import check_models, check_tot
from compiler.passes.check.openapi import check_openapi
from compiler.passes.check.process import check_process
from compiler.passes.check.schemas import check_schemas
from compiler.passes.check.scope import check_placeholders, check_scope
from compiler.passes.check.secrets import check_secrets
from compiler.passes.check.toolnames import check_tool_names
from compiler.passes.check.tools import check_python_tools, check_tool_cache
from compiler.passes.check.usage import check_usage
from compiler.symbols import Program


def check(program: Program, files: Mapping[str, str]) -> tuple[Diagnostic, ...]:
    return (
        *check_cycles(program, files),
        *check_process(program),
        *check_schemas(program),
        *check_scope(program, files),
        *check_placeholders(program, files),
        *check_models(program),
        *check_tot(program),
        *check_secrets(program, files),
        *check_hosts(program),
        *check_builtins(program),
        *check_openapi(program),
        *check_python_tools(program),
        *check_tool_cache(program),
        *check_tool_names(program),
        *check_memory(program),
        *check_addresses(program),
        *check_shared_memory(program),
        *check_usage(program),
    )


__all__ = ["check"]
