"""Secrets are ``${env:NAME}`` references, never literals; references are well formed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, error
from compiler.locate import inside
from compiler.secrets import literal_secret, malformed_refs, suspicious, walk_strings
from compiler.symbols import Program


def check_secrets(program: Program, files: Mapping[str, str]) -> Iterator[Diagnostic]:
    for entry in program.user_entries():
        if not suspicious(entry.doc.data):
            continue  # the common case, found without building a path for every value
        for path, key, text in walk_strings(entry.doc.data):
            if path[:1] == ("metadata",) and key == "description":
                continue
            for written in malformed_refs(text):
                what = "malformed" if written.endswith("}") else "unclosed"
                yield error(
                    "K4009",
                    f"{what} environment reference '{written}'",
                    entry.doc.locate(path),
                    "write ${env:NAME} with NAME made of letters, digits and '_', "
                    "such as ${env:OPENAI_API_KEY}",
                )
            found = literal_secret(key, text)
            if found is not None:
                line = text[: text.find(found.secret)].count("\n") + 1
                fixed = found.fixed if len(found.fixed) <= 80 and "\n" not in found.fixed else None
                yield error(
                    "K4008",
                    f"{found.why}; secrets must not be written in specs",
                    entry.doc.locate(path)
                    if found.secret == text.strip()  # the whole value: point at it as written
                    else inside(entry.doc, files, path, line, (found.secret,)),
                    f"read it from the environment: {key or 'value'}: {fixed}"
                    if fixed
                    else "replace it with an environment reference such as ${env:API_KEY}",
                )
