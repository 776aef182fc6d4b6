"""``kiln plan diff``: what changed between two plans, like ``terraform plan``.

Specs and graph nodes are added (``+``), removed (``-``) or changed (``~``, with each
changed field); reach changes are flagged (``!``) when an agent or crew can now reach a tool
or a secret it could not before, since that is what a reviewer most needs to see.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
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


def diff_plans(
    old: Mapping[str, Any], new: Mapping[str, Any], *, whole: bool = False
) -> list[Change]:
    """What changed. Long values are shown by their difference (list items added and
    removed, changed lines of a text, the changed middle of a long line); ``whole`` shows
    every changed value whole instead."""
    token = _WHOLE.set(whole)
    try:
        return _diff(old, new)
    finally:
        _WHOLE.reset(token)


_WHOLE: ContextVar[bool] = ContextVar("kiln_diff_whole", default=False)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
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
        executors = _at(before, ("spec", "executor")), _at(after, ("spec", "executor"))
        details += tuple(_moved(*executors))
        if details:
            yield Change(section="reach", op="!", subject=key, details=details)


def _moved(old: Any, new: Any) -> Iterator[str]:
    """Where a tool's calls go, when that changed: an HTTP or OpenAPI tool's host or
    allowed hosts, an MCP server's URL or command; and the secrets that now go there."""
    if not isinstance(old, dict) or not isinstance(new, dict) or old.get("type") != new.get(
        "type"
    ):
        return
    before, after = _destination(old), _destination(new)
    if before != after:
        yield f"now calls {after or '(nothing named)'} (was {before or '(nothing named)'})"
        secrets = sorted(set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", _json(new))))
        if secrets:
            names = ", ".join(f"${{env:{s}}}" for s in secrets)
            yield f"sends {names} to {after or 'a new destination'}"


def _destination(executor: Mapping[str, Any]) -> str:
    kind = executor.get("type")
    if kind in ("http", "openapi"):
        url = executor.get("url") or executor.get("base_url") or executor.get("document") or ""
        host = _host(str(url)) if kind == "http" or executor.get("base_url") else str(url)
        allowed = executor.get("allow_hosts") or []
        return host + (f" (allow_hosts: {', '.join(allowed)})" if allowed else "")
    if kind == "mcp":
        server = executor.get("server") or {}
        if server.get("url"):
            return f"MCP server {server['url']}"
        return f"MCP server `{' '.join(server.get('command') or [])}`"
    return ""


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    if "{{" in url.split("/")[2 if "://" in url else 0]:
        return url  # a templated host: the whole template is where it goes
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


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
            details = (
                *_field_changes(old[key].get("spec"), new[key].get("spec")),
                *_file_changes(old[key].get("files") or {}, new[key].get("files") or {}),
            )
            yield Change(section="specs", op="~", subject=key, details=details)


def _file_changes(old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[str]:
    """The files a spec pulls in (its code, its document) that were added, removed or
    changed: code a reviewer must read again."""
    for name in sorted(set(old) | set(new)):
        if name not in old:
            yield f"file {name}: added"
        elif name not in new:
            yield f"file {name}: removed"
        elif old[name] != new[name]:
            yield f"file {name}: changed ({old[name][7:19]} -> {new[name][7:19]})"


def _graph(
    name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> Iterator[Change]:
    section = f"graph {name}"
    old_nodes = (old or {}).get("nodes", {})
    new_nodes = (new or {}).get("nodes", {})
    rehashed: list[str] = []  # nodes whose only change is their spec's hash
    for node_id in sorted(set(old_nodes) | set(new_nodes)):
        before, after = old_nodes.get(node_id), new_nodes.get(node_id)
        if before is None:
            yield Change(section=section, op="+", subject=f"{node_id} ({after['kind']})")
        elif after is None:
            yield Change(section=section, op="-", subject=f"{node_id} ({before['kind']})")
        elif before != after:
            details = tuple(_field_changes(before, after))
            if all(_rehash(d) for d in details):
                rehashed.append(node_id)
                continue
            yield Change(section=section, op="~", subject=node_id, details=details)
    if rehashed:
        more = f" and {len(rehashed) - 6} more" if len(rehashed) > 6 else ""
        shown = ", ".join(rehashed[:6]) + more
        yield Change(
            section=section, op="~", subject=f"{len(rehashed)} node(s) of changed specs",
            details=(f"{shown}: only their spec's hash changed (the specs' changes are above)",),
        )
    old_edges = {_edge_key(e) for e in (old or {}).get("edges", [])}
    new_edges = {_edge_key(e) for e in (new or {}).get("edges", [])}
    for edge in sorted(new_edges - old_edges):
        yield Change(section=section, op="+", subject=f"edge {edge}")
    for edge in sorted(old_edges - new_edges):
        yield Change(section=section, op="-", subject=f"edge {edge}")


def _rehash(detail: str) -> bool:
    """A node's change that only says its spec's hash changed (the spec's own change is
    shown under specs)."""
    return detail.partition(":")[0].rpartition(".")[2] == "spec_hash"


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
        unknown = tuple(
            f"its worst-case {name} is no longer known"
            for name, value in (before.get("bounds") or {}).items()
            if value is not None and (after.get("bounds") or {}).get(name, 0) is None
        )
        if before and after and unknown:
            yield Change(section="reach", op="!", subject=subject, details=unknown)
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
        yield from _leaf_change(prefix or "value", old, new)


def _leaf_change(path: str, old: Any, new: Any) -> Iterator[str]:
    """One changed value, shown by what differs."""
    if _WHOLE.get():
        yield f"{path}: {_json(old)} -> {_json(new)}"
        return
    if isinstance(old, list) and isinstance(new, list):
        added = [i for i in new if i not in old]
        removed = [i for i in old if i not in new]
        if added or removed:
            parts = [f"added {', '.join(_short(i, 40) for i in added)}"] if added else []
            parts += [f"removed {', '.join(_short(i, 40) for i in removed)}"] if removed else []
            yield f"{path}: {'; '.join(parts)}"
        else:
            yield f"{path}: the same items in another order"
        return
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = [
            line for line in difflib.ndiff(old.splitlines(), new.splitlines())
            if line[:1] in "+-"
        ]  # fmt: skip
        yield f"{path}: {len(lines)} line(s) changed"
        yield from (f"  {line[:120]}" for line in lines[:20])
        if len(lines) > 20:
            yield f"  … and {len(lines) - 20} more (-v shows the whole values)"
        return
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 60:
        yield f"{path}: {_middle(old, new)} -> {_middle(new, old)}"
        return
    yield f"{path}: {_short(old)} -> {_short(new)}"


def _middle(text: str, other: str) -> str:
    """``text`` around where it differs from ``other``: the differing middle with a little
    context, elided at both ends."""
    start = 0
    while start < min(len(text), len(other)) and text[start] == other[start]:
        start += 1
    end = 0
    while end < min(len(text), len(other)) - start and text[-1 - end] == other[-1 - end]:
        end += 1
    lo = max(0, start - 20)
    hi = min(len(text), len(text) - end + 20)
    middle = text[lo:hi]
    if len(middle) > 160:
        middle = middle[:80] + "…" + middle[-79:]
    return json.dumps(("…" if lo else "") + middle + ("…" if hi < len(text) else ""),
                      ensure_ascii=False)  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


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
