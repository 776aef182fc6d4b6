"""Pass 3, templates: parse every Jinja2 template once and list the variables it reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, error
from compiler.locate import inside
from compiler.symbols import SpecEntry, Specs, Templates, TemplateSite
from compiler.templates import ParsedTemplate, TemplateError, parse
from specs import Agent, Crew, MemoryPolicy, Tool
from specs.source import DataPath
from specs.tool import HTTP_METHODS, HttpExecutor, OpenApiExecutor, ShellExecutor


def template_sites(entry: SpecEntry) -> Iterator[tuple[DataPath, str]]:
    """Every string of a spec that is a template, with its path in the document."""
    model = entry.model
    if isinstance(model, Agent):
        yield ("spec", "instructions"), model.spec.instructions
    elif isinstance(model, Crew):
        for i in range(len(model.spec.tasks)):
            yield ("spec", "tasks", i, "prompt"), model.spec.prompt_of(i)
    elif isinstance(model, MemoryPolicy):
        if model.spec.inject.template is not None:
            yield ("spec", "inject", "template"), model.spec.inject.template
    elif isinstance(model, Tool):
        ex = model.spec.executor
        if isinstance(ex, HttpExecutor):
            if ex.method not in HTTP_METHODS:
                yield ("spec", "executor", "method"), ex.method
            yield ("spec", "executor", "url"), ex.url
            for key, value in ex.headers.items():
                yield ("spec", "executor", "headers", key), value
            if ex.body is not None:
                yield ("spec", "executor", "body"), ex.body
        elif isinstance(ex, OpenApiExecutor):
            for key, value in ex.headers.items():
                yield ("spec", "executor", "headers", key), value
        elif isinstance(ex, ShellExecutor):
            for i, arg in enumerate(ex.argv):
                yield ("spec", "executor", "argv", i), arg


def templates(specs: Specs, files: Mapping[str, str]) -> tuple[Templates, tuple[Diagnostic, ...]]:
    parsed: dict[TemplateSite, ParsedTemplate] = {}
    diags: list[Diagnostic] = []
    users = {e.key for e in specs.entries if e.origin == "user"}
    for entry in specs.entries:
        if entry.origin != "user" and entry.key in users:
            continue  # a user's spec of the same name replaces this standard one
        for path, source in template_sites(entry):
            result = parse(source)
            if isinstance(result, TemplateError):
                span = inside(entry.doc, files, path, result.lineno, (result.near, "{{", "{%"))
                diags.append(
                    error(
                        "K4003",
                        f"template error: {result.message}",
                        span,
                        result.hint
                        or "templates are Jinja2: {{ inputs.name }} for values, "
                        "{% if %}...{% endif %} for logic",
                    )
                )
                continue
            # the first of duplicate specs is the one resolve keeps (the others are errors)
            parsed.setdefault(TemplateSite(spec=entry.key, path=path), result)
    return Templates(specs, parsed), tuple(diags)
