"""Pass 8, emit: the plan, a JSON document with sorted keys and content hashes.

``specs`` holds every user spec and the standard ones the graphs use, each with its hash;
``plan_hash`` covers all the rest. Nothing in the plan says where a spec was written, so
moving specs between files, reformatting them or reordering keys leaves every hash unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from compiler.hashing import Fingerprint, digest
from compiler.ir import Graph
from compiler.passes.analyze import Reach
from compiler.symbols import Program

PLAN_VERSION: Final = 1


def emit(
    program: Program,
    prints: Mapping[str, Fingerprint],
    graphs: tuple[Graph, ...],
    reach: Mapping[str, Reach],
) -> dict[str, Any]:
    used = {n.spec for g in graphs for n in g.nodes if n.spec is not None}
    specs: dict[str, Any] = {}
    for entry in program.entries():
        if entry.origin == "user" or entry.key in used:
            fp = prints[entry.key]
            specs[entry.key] = {"hash": fp.hash, "origin": entry.origin, "spec": fp.data}
            if fp.files:
                specs[entry.key]["files"] = fp.files
    body: dict[str, Any] = {
        "kiln_plan": PLAN_VERSION,
        "specs": specs,
        "graphs": {g.name: g.as_json() for g in graphs},
        "analysis": {name: r.as_json() for name, r in reach.items()},
    }
    # each spec's data is already digested into its hash: hash the hashes, not the data again
    summary = {k: {"hash": v["hash"], "origin": v["origin"]} for k, v in specs.items()}
    return {**body, "plan_hash": digest({**body, "specs": summary})}


def dumps(plan: Mapping[str, Any]) -> str:
    """The plan's bytes: the same plan always gives the same text."""
    return json.dumps(plan, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
