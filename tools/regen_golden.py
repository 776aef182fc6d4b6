"""Regenerate the golden diagnostics in ``tests/golden/<pass>/<case>/expected.txt``.

A case is a folder of spec files; its ``expected.txt`` is exactly what ``render_text``
prints for them, compiled from inside the case folder so that every path in it is relative
and the file reads the same on every machine. ``tests/unit/test_golden.py`` compares.

    .venv/bin/python tools/regen_golden.py            # rewrite what changed, say which
    .venv/bin/python tools/regen_golden.py --check    # exit 1 if any is stale
    .venv/bin/python tools/regen_golden.py check/cycles   # only cases whose path has this

Then review the change with ``git diff tests/golden``: it is the change users will see.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.diagnostics import render_text
from compiler.pipeline import compile_paths

__all__ = ["EXPECTED", "GOLDEN", "cases", "is_current", "main", "render_case"]

ROOT = Path(__file__).resolve().parent.parent
#: The folder of golden cases: one folder per pass, one folder per case inside.
GOLDEN = ROOT / "tests" / "golden"
#: The name of the file that holds a case's rendered diagnostics.
EXPECTED = "expected.txt"


def cases(root: Path = GOLDEN) -> list[Path]:
    """Every case folder (``<pass>/<case>``), sorted."""
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def render_case(case: Path) -> str:
    """The diagnostics of the specs in ``case`` as text, with paths relative to ``case``."""
    with contextlib.chdir(case):
        result = compile_paths(["."])
    text = render_text(result.diagnostics, result.files)
    return text + "\n" if text else ""


def is_current(case: Path) -> bool:
    expected = case / EXPECTED
    return expected.is_file() and expected.read_text("utf-8") == render_case(case)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/regen_golden.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("only", nargs="*", help="only cases whose <pass>/<case> contains this")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    selected = [
        c
        for c in cases()
        if not args.only or any(part in c.relative_to(GOLDEN).as_posix() for part in args.only)
    ]
    if not selected:
        print("no golden case matches", file=sys.stderr)
        return 2
    changed: list[str] = []
    failed: list[str] = []
    for case in selected:
        expected = case / EXPECTED
        try:
            text = render_case(case)
        except Exception as exc:  # noqa: BLE001 - a compiler bug: report it, do the other cases
            failed.append(case.relative_to(GOLDEN).as_posix())
            print(f"FAILED: {failed[-1]}: the compiler raised {type(exc).__name__}: {exc}")
            continue
        old = expected.read_text("utf-8") if expected.is_file() else None
        if old == text:
            continue
        name = expected.relative_to(ROOT).as_posix()
        changed.append(name)
        if args.check:
            print(f"stale: {name}")
            continue
        expected.write_text(text, encoding="utf-8", newline="\n")
        print(f"{'created' if old is None else 'updated'}: {name}")
    verb = "stale" if args.check else "rewritten"
    print(f"{len(changed)} of {len(selected)} golden files {verb}")
    if changed and not args.check:
        print("review them with: git diff tests/golden")
    if failed:
        print(f"{len(failed)} cases crashed the compiler (a bug: never a traceback)")
        return 1
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
