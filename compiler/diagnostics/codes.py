"""The catalogue of diagnostic codes: the one place a code is defined.

``docs/diagnostics.md`` is generated from this table (``make docs``) and a test checks that
every code here is documented there and triggered by a file in ``examples/broken/``.
Codes are grouped by the pass that reports them: K1 load, K2 validate, K3 resolve, K4 check,
K5 warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    severity: Severity
    title: str
    description: str


def _catalogue(*codes: Code) -> dict[str, Code]:
    return {c.code: c for c in codes}


# fmt: off
CODES: Final[dict[str, Code]] = _catalogue(
    # -- load ----------------------------------------------------------------------------
    Code("K1001", "error", "unreadable path", "A path given on the command line does not exist or cannot be read."),
    Code("K1002", "error", "file too large", "A spec file is larger than the loader's size limit (4 MiB by default)."),
    Code("K1003", "error", "invalid YAML", "The file is not valid YAML, or uses a YAML feature specs do not allow (complex keys, unknown aliases, NaN)."),
    Code("K1004", "error", "too many documents", "One file holds more documents than the limit (1,000 by default)."),
    Code("K1005", "error", "nesting too deep", "Mappings and sequences nest deeper than the limit (64 levels by default)."),
    Code("K1006", "error", "alias expansion too large", "Aliases expand the document past the node limit: a 'billion laughs' document is rejected without being expanded."),
    Code("K1007", "error", "duplicate key", "A mapping has the same key twice. YAML parsers silently keep the last one; kiln refuses."),
    Code("K1008", "error", "unsupported tag", "A YAML tag other than the core schema's (such as !!python/object) is used."),
    Code("K1009", "error", "not a spec document", "A document is not a mapping with apiVersion, kind, metadata and spec."),
    Code("K1010", "error", "no spec files", "A folder given on the command line holds no *.yaml or *.yml file."),
    Code("K1011", "error", "not UTF-8", "A spec file is not valid UTF-8 text."),
    # -- validate ------------------------------------------------------------------------
    Code("K2001", "error", "unknown apiVersion", "The document's apiVersion is missing or is not kiln/v1."),
    Code("K2002", "error", "unknown kind", "The document's kind is missing or is not Agent, Tool, MemoryPolicy or Crew."),
    Code("K2003", "error", "unknown key", "A key that the kind's schema does not have, usually a typo: the hint suggests the closest field."),
    Code("K2004", "error", "wrong type or value", "A value has the wrong type or is out of range for its field."),
    Code("K2005", "error", "missing field", "A required field is missing."),
    Code("K2006", "error", "invalid name", "A name is not a DNS-style label (lowercase letters, digits, '-' and '_', at most 63 characters), or an input name is not an identifier."),
    # -- resolve -------------------------------------------------------------------------
    Code("K3001", "error", "duplicate name", "Two specs of the same kind have the same name, or two tasks of one crew do."),
    Code("K3002", "error", "unknown tool", "An agent lists a tool that no Tool spec (nor the standard library) defines."),
    Code("K3003", "error", "unknown memory policy", "An agent or crew names a MemoryPolicy that does not exist."),
    Code("K3004", "error", "unknown agent", "A crew task, a crew manager or an agent's delegate_to names an agent that does not exist."),
    Code("K3005", "error", "unknown task", "A task's depends_on, or a crew's output, names a task the crew does not have."),
    # -- check ---------------------------------------------------------------------------
    Code("K4001", "error", "dependency cycle", "Crew tasks depend on each other in a cycle, or agents delegate to each other in a cycle. The whole cycle is reported."),
    Code("K4002", "error", "invalid JSON Schema", "An input_schema or output_schema is not a valid JSON Schema (Draft 2020-12)."),
    Code("K4003", "error", "template syntax error", "A Jinja2 template (instructions, prompt, URL, ...) does not parse."),
    Code("K4004", "error", "undefined template variable", "A template uses a variable that is not in scope: inputs the agent or crew does not declare, or an unknown name."),
    Code("K4005", "error", "output of a task not depended on", "A prompt reads tasks.<name>.output of a task that its depends_on does not (transitively) include, so it may not have run yet."),
    Code("K4006", "error", "unknown output field", "A prompt reads a field of a task's output that the task's output_schema does not have (or the task has no output_schema, so its output is text)."),
    Code("K4007", "error", "malformed model string", "A model is not local/<name>, scripted:<file> or <provider>/<model> with a known provider."),
    Code("K4008", "error", "literal secret", "A secret (an api_key, token or password field, credentials in a URL, a well-known key format) is written in the spec instead of a ${env:NAME} reference."),
    Code("K4009", "error", "malformed env reference", "A ${env:...} reference is malformed: the name must be an environment variable name such as OPENAI_API_KEY."),
    Code("K4010", "error", "crew process mismatch", "A hierarchical crew has no manager, another process names one, or a sequential crew depends on a later task."),
    Code("K4011", "error", "input not provided", "An agent used by a crew needs an input the crew does not declare."),
    Code("K4012", "error", "host not allowed", "An HTTP tool's URL names a host that its allow_hosts list does not include."),
    Code("K4013", "error", "builtin outside the standard library", "A builtin tool runs in the runtime's own process, with all its rights: only functions of kiln's standard library (stdlib_tools) may be builtins. Other code is a python tool, which runs in a sandbox."),
    Code("K4014", "error", "scripted model file missing", "An agent's model (or fallback) is scripted:<file>, and the file does not exist. The path is relative to the spec's file."),
    Code("K4015", "error", "tool path outside its spec folder", "A python tool's paths entry, or a sandbox.folders entry, leaves the folder of its spec file (an absolute path, or ..), is not a folder, or (folders) has the same name as another. A sandbox only ever sees folders beside or below the spec."),
    Code("K4016", "error", "python tool code unusable", "A python tool's inline code does not parse, or defines no run function."),
    Code("K4017", "error", "OpenAPI document unusable", "An openapi tool's document is missing, is not JSON or YAML, is not an OpenAPI 3.0 or 3.1 document, or names no absolute server URL when the tool gives no base_url. The path is relative to the spec's file."),
    Code("K4018", "error", "unknown OpenAPI operation", "An openapi tool lists in operations an operationId that its document does not have."),
    Code("K4019", "error", "OpenAPI operation unusable", "An operation of an openapi tool's document cannot become a tool: a $ref that points outside the document, to nothing, or back to itself; two operations or two parameters with one name; a required body that is not JSON; schemas that are not valid JSON Schema."),
    Code("K4020", "error", "tool name taken twice", "Two tools would be offered to models under the same name: a spec named like an operation another spec imports (<spec>__<operation>), or like a tool the runtime makes itself (ask_<agent> for an agent something delegates to, task_<task> for a hierarchical crew's task)."),
    Code("K4021", "error", "memory store unusable", "A memory policy names an embedder kiln does not know (default, hashing, hashing/<dim>, sentence, sentence/<model>, litellm/<model>), or keeps memory on a server backend (chroma-server, neo4j) without saying where the server is, or gives a server address with a scheme its backend does not speak (redis://, http://, bolt:// or neo4j://)."),
    # -- warnings ------------------------------------------------------------------------
    Code("K5001", "warning", "unused tool", "A Tool spec that no agent lists and no agent can discover."),
    Code("K5002", "warning", "unused memory policy", "A MemoryPolicy that no agent or crew uses."),
    Code("K5003", "warning", "unknown model price", "A hosted model's price is not known to kiln, so its worst-case cost cannot be bounded."),
    Code("K5004", "warning", "empty spec file", "A *.yaml file holds no document: it is empty or only comments."),
    Code("K5005", "warning", "single-brace placeholder", "A template holds {name} for a declared input: CrewAI's placeholder style, plain text in Jinja2, where it is written {{ inputs.name }}."),
    Code("K5006", "warning", "tree of thought beyond its iterations", "An agent's tot strategy needs depth x breadth x 2 + 1 model calls, more than its limits.max_iterations allows: it would stop with limit_exceeded before answering."),
    Code("K5007", "warning", "cache on a side-effecting tool", "A tool with side_effects: true also has a cache: its results are never cached, since calling it again is the point."),
    Code("K5008", "warning", "crew memory not shared, or nothing to share", "A crew has shared_memory: true but neither it nor any of its agents names a memory policy, or it names a memory policy without shared_memory: true (the policy is then unused: each agent keeps its own)."),
)
# fmt: on
