"""Secrets are ``${env:NAME}`` references, never literals; references are well formed."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic, error
from compiler.secrets import literal_secret, malformed_refs, walk_strings
from compiler.symbols import Program


def check_secrets(program: Program) -> Iterator[Diagnostic]:
    for entry in program.user_entries():
        for path, key, text in walk_strings(entry.doc.data):
            if path[:1] == ("metadata",) and key in ("description",):
                continue
            for name in malformed_refs(text):
                yield error(
                    "K4009",
                    f"malformed environment reference '${{env:{name}}}'",
                    entry.doc.locate(path),
                    "write ${env:NAME} with NAME made of letters, digits and '_', "
                    "such as ${env:OPENAI_API_KEY}",
                )
            why = literal_secret(key, text)
            if why is not None:
                env = (key or "SECRET").upper().replace("-", "_")
                yield error(
                    "K4008",
                    f"{why}; secrets must not be written in specs",
                    entry.doc.locate(path),
                    f"read it from the environment: {key or 'value'}: ${{env:{env}}}",
                )
