"""Tools: the registry of everything an agent may call, and one way to call any of it.

- :mod:`runtime.tools.box`: the tools of one agent run, input/output validation, executors;
- :mod:`runtime.tools.registry`: tool specs and the tools they import (MCP servers,
  OpenAPI documents) as one table of callable tools, under names model APIs accept
  (:mod:`specs.toolnames`).
"""

from runtime.tools.box import (
    NO_APPROVER,
    Approver,
    BoundTool,
    BuiltinExecutor,
    NotAvailableExecutor,
    Printed,
    ToolBox,
    ToolError,
    ToolExecutor,
    ToolOutcome,
    ToolStatus,
    VirtualCall,
    approve_all,
    bind,
    default_executors,
    delegate_tool,
    schema_error,
    task_tool,
    virtual,
)

__all__ = [
    "NO_APPROVER",
    "Approver",
    "BoundTool",
    "BuiltinExecutor",
    "NotAvailableExecutor",
    "Printed",
    "ToolBox",
    "ToolError",
    "ToolExecutor",
    "ToolOutcome",
    "ToolStatus",
    "VirtualCall",
    "approve_all",
    "bind",
    "default_executors",
    "delegate_tool",
    "schema_error",
    "task_tool",
    "virtual",
]
