"""Memory policies name stores that can be opened, and crews share memory that exists.

The embedder forms mirror ``runtime.embed.get_embedder`` (the compiler may not import the
runtime): ``default``, ``hashing``, ``hashing/<dim>``, ``sentence``, ``sentence/<model>``,
``litellm/<model>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from compiler.diagnostics import Diagnostic, error
from compiler.diagnostics.suggest import closest
from compiler.symbols import Program

_EMBEDDER = re.compile(r"default|hashing(/[1-9][0-9]{0,4})?|sentence(/.+)?|litellm/.+")
_EMBEDDERS = ("default", "hashing", "hashing/<dim>", "sentence", "litellm/<model>")
#: backends that need an address: (store, backend) -> the field that gives it
_ADDRESS = {("vector", "chroma-server"): "url", ("graph", "neo4j"): "uri"}
#: the schemes each server backend's address may have
_SCHEMES = {
    ("short_term", "redis"): ("url", ("redis", "rediss", "unix")),
    ("vector", "chroma-server"): ("url", ("http", "https")),
    ("graph", "neo4j"): ("uri", ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")),
}


def check_memory(program: Program) -> Iterator[Diagnostic]:
    """K4021: an embedder kiln does not know, a server backend with no address."""
    for name, entry in program.policies.items():
        spec = program.policy(name).spec
        vector = spec.vector
        if vector is not None and vector.embedder is not None:
            if not _EMBEDDER.fullmatch(vector.embedder) and not entry.lost("spec", "vector"):
                kind = vector.embedder.partition("/")[0]
                guess = closest(kind, ("default", "hashing", "sentence", "litellm"))
                hint = f"did you mean '{guess}'? " if guess else ""
                yield error(
                    "K4021",
                    f"memory policy '{name}' names embedder '{vector.embedder}', which kiln "
                    "does not know",
                    entry.doc.locate(("spec", "vector", "embedder")),
                    f"{hint}use one of {', '.join(_EMBEDDERS)}",
                )
        for (store, backend), field in _ADDRESS.items():
            part = getattr(spec, store)
            if part is None or part.backend != backend or getattr(part, field):
                continue
            yield error(
                "K4021",
                f"memory policy '{name}' keeps {store} memory on {backend}, but gives no "
                f"{field}",
                entry.doc.locate(("spec", store, "backend")),
                f"add {store}.{field} (the server's address), or use the embedded backend "
                f"({'chroma' if store == 'vector' else 'networkx'})",
            )


def check_addresses(program: Program) -> Iterator[Diagnostic]:
    """K4021: a server address written out with a scheme its backend does not speak."""
    for name, entry in program.policies.items():
        spec = program.policy(name).spec
        for (store, backend), (field, schemes) in _SCHEMES.items():
            part = getattr(spec, store)
            if part is None or part.backend != backend:
                continue
            address = getattr(part, field)
            if not address or "${" in address:  # read at run time
                continue
            scheme = address.partition("://")[0].lower() if "://" in address else ""
            if scheme in schemes:
                continue
            known = ", ".join(f"{s}://" for s in schemes)
            yield error(
                "K4021",
                f"memory policy '{name}' gives its {store.replace('_', '-')} store "
                f"({backend}) the address '{address}', which {backend} cannot use",
                entry.doc.locate(("spec", store, field)),
                f"write it as {schemes[0]}://HOST:PORT (schemes: {known})",
            )


def check_shared_memory(program: Program) -> Iterator[Diagnostic]:
    """K5008: a crew that shares memory no one has, or names a policy it does not share."""
    for name, entry in program.crews.items():
        crew = program.crew(name).spec
        if crew.shared_memory and crew.memory is None:
            agents = {t.agent for t in crew.tasks if t.agent in program.agents}
            if not any(program.agent(a).spec.memory for a in agents):
                yield error(
                    "K5008",
                    f"crew '{name}' shares memory, but neither it nor its agents name a "
                    "memory policy: there is nothing to share",
                    entry.doc.locate(("spec", "shared_memory")),
                    "add memory: <policy> to the crew",
                )
        elif crew.memory in program.policies and not crew.shared_memory:
            yield error(
                "K5008",
                f"crew '{name}' names memory policy '{crew.memory}' but does not share it: "
                "each agent keeps to its own policy",
                entry.doc.locate(("spec", "memory")),
                "add shared_memory: true for the crew's agents to remember together",
            )
