"""``kiln plan diff``: what changed between two plans, like ``terraform plan``.

Specs and graph nodes are added (``+``), removed (``-``) or changed (``~``, with each
changed field); reach changes are flagged (``!``) when an agent or crew can now reach a tool
or a secret it could not before, since that is what a reviewer most needs to see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["+", "-", "~", "!"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    section: str  # "specs", "graph Crew/x", "reach"
    op: Op
    subject: str
    details: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "op": self.op,
            "subject": self.subject,
            "details": list(self.details),
        }


def diff_plans(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes = list(_specs(old.get("specs", {}), new.get("specs", {})))
    old_graphs, new_graphs = old.get("graphs", {}), new.get("graphs", {})
    for name in sorted(set(old_graphs) | set(new_graphs)):
        changes += _graph(name, old_graphs.get(name), new_graphs.get(name))
    changes += _reach(old.get("analysis", {}), new.get("analysis", {}))
    changes += _guards(old.get("specs", {}), new.get("specs", {}))
    return changes


#: tool settings whose change makes a tool less guarded: (path, old value, new value, what)
_GUARDS = (
    (("requires_approval",), True, False, "no longer asks for approval"),
    (("sandbox", "network"), False, True, "can now reach the network"),
    (("sandbox", "unsafe"), False, True, "may now run without a sandbox"),
    (("side_effects",), False, True, "now has side effects"),
)


def _guards(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    """Tools whose safety settings were loosened: flagged like new reach."""
    for key in sorted(set(old) & set(new)):
        if not key.startswith("Tool/"):
            continue
        before, after = old[key].get("spec", {}), new[key].get("spec", {})
        details = tuple(
            what
            for path, was, now, what in _GUARDS
            if _at(before, ("spec", *path)) == was and _at(after, ("spec", *path)) == now
        )
        if details:
            yield Change(section="reach", op="!", subject=key, details=details)


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key in sorted(set(old) | set(new)):
        if key not in old:
            yield Change(section="specs", op="+", subject=key)
        elif key not in new:
            yield Change(section="specs", op="-", subject=key)
        elif old[key].get("hash") != new[key].get("hash"):
            details = tuple(_field_changes(old[key].get("spec"), new[key].get("spec")))
            yield Change(section="specs", op="~", subject=key, details=details)


def _graph(
    name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> Iterator[Change]:
    section = f"graph {name}"
    old_nodes = (old or {}).get("nodes", {})
    new_nodes = (new or {}).get("nodes", {})
    for node_id in sorted(set(old_nodes) | set(new_nodes)):
        before, after = old_nodes.get(node_id), new_nodes.get(node_id)
        if before is None:
            yield Change(section=section, op="+", subject=f"{node_id} ({after['kind']})")
        elif after is None:
            yield Change(section=section, op="-", subject=f"{node_id} ({before['kind']})")
        elif before != after:
            details = tuple(_field_changes(before, after))
            yield Change(section=section, op="~", subject=node_id, details=details)
    old_edges = {_edge_key(e) for e in (old or {}).get("edges", [])}
    new_edges = {_edge_key(e) for e in (new or {}).get("edges", [])}
    for edge in sorted(new_edges - old_edges):
        yield Change(section=section, op="+", subject=f"edge {edge}")
    for edge in sorted(old_edges - new_edges):
        yield Change(section=section, op="-", subject=f"edge {edge}")


def _edge_key(edge: Mapping[str, Any]) -> str:
    names = ", ".join(b["name"] for b in edge.get("bindings", []))
    return f"{edge['source']} -> {edge['target']} [{edge['kind']}{': ' + names if names else ''}]"


def _reach(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for subject in sorted(set(old) | set(new)):
        before, after = old.get(subject, {}), new.get(subject, {})
        gained = sorted(set(after.get("tools", {})) - set(before.get("tools", {})))
        secrets = sorted(set(after.get("secrets", [])) - set(before.get("secrets", [])))
        details = tuple(f"can now reach tool '{t}' ({after['tools'][t]})" for t in gained)
        details += tuple(f"can now read secret ${{env:{s}}}" for s in secrets)
        if details and before:
            yield Change(section="reach", op="!", subject=subject, details=details)
        lost = sorted(set(before.get("tools", {})) - set(after.get("tools", {})))
        lost_secrets = sorted(set(before.get("secrets", [])) - set(after.get("secrets", [])))
        bounds = tuple(_field_changes(before.get("bounds"), after.get("bounds"), "bounds"))
        quiet = tuple(f"no longer reaches tool '{t}'" for t in lost)
        quiet += tuple(f"no longer reads secret ${{env:{s}}}" for s in lost_secrets)
        if before and after and (quiet or bounds):
            yield Change(section="reach", op="~", subject=subject, details=quiet + bounds)


def _field_changes(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    """``path: old -> new`` for each leaf that differs. Lists of named items (tasks) are
    compared item by item by name, lists of the same length by position, others whole."""
    if isinstance(old, list) and isinstance(new, list):
        named_old, named_new = _by_name(old), _by_name(new)
        if named_old is not None and named_new is not None:
            yield from _field_changes(named_old, named_new, prefix)
            return
        if len(old) == len(new) and old != new:
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                yield from _field_changes(a, b, f"{prefix}[{i}]")
            return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(key, str) and key.startswith("["):
                path = f"{prefix}{key}"
            if key not in old:
                yield f"{path}: (none) -> {_short(new[key])}"
            elif key not in new:
                yield f"{path}: {_short(old[key])} -> (none)"
            else:
                yield from _field_changes(old[key], new[key], path)
    elif old != new:
        yield f"{prefix or 'value'}: {_short(old)} -> {_short(new)}"


def _by_name(items: list[Any]) -> dict[str, Any] | None:
    """``{"[name]": item}`` when every item is a mapping with a distinct ``name``."""
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if not items or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return {f"[{n}]": i for n, i in zip(names, items, strict=True)}


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def render(changes: list[Change]) -> str:
    if not changes:
        return "No changes: the plans are the same.\n"
    out: list[str] = []
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            out.append(f"{section}:")
        out.append(f"  {change.op} {change.subject}")
        out.extend(f"      {d}" for d in change.details)
    counts = {op: sum(c.op == op for c in changes) for op in "+~-!"}
    summary = f"Plan: {counts['+']} to add, {counts['~']} to change, {counts['-']} to remove"
    if counts["!"]:
        summary += f"; {counts['!']} with new reach (review these)"
    out.append(summary + ".")
    return "\n".join(out) + "\n"
