"""A fuzzer for the compiler (#12 item 18): mutated specs in, and kiln must answer every
one with diagnostics, never an internal error, a hang or a plan that depends on the hash
seed; and every diagnostic must sit on a real line of its file.

Seeds: every spec file of ``examples/`` (the broken ones too) and of ``tests/golden``.
Mutations, at four levels: bytes (flip, insert, delete, a control or line-break
character), lines (drop, duplicate, swap, indent), YAML structure (a key dropped, a value
of another type, a subtree duplicated or nested deeper) and values (long strings, paths
out of the folder, ``/dev/zero``, NUL bytes, templates, ``${env:…}``, huge numbers).

    python benchmarks/fuzz_compile.py --cases 100000          # the benchmark
    python benchmarks/fuzz_compile.py --seconds 60 --seed 7   # what CI runs, shorter

Prints cases run, internal errors, hangs over 5 s, non-deterministic plans and
diagnostics off their file, with the first few of each saved under ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.pipeline import compile_paths  # noqa: E402
from specs.source.loader import split_lines  # noqa: E402

HANG_S = 5.0
VALUES: list[Any] = [
    "", " ", "x" * 300, "x" * 70_000, "../../../etc/passwd", "/etc/passwd", "/dev/zero",
    "a\x00b", "{{ inputs.nope }}", "{{ tasks.x.output.y }}", "{% for x in y %}",
    "${env:HOME}", "${env:}", "scripted:" + "y" * 300, "scripted:/dev/zero", "local/x",
    "openai/gpt-4o", "\u2028", "\u202e", "é" * 50, 0, -1, 10**30, 1e308, float("nan"),
    True, None, [], {}, [1, 2], {"a": {"b": {"c": None}}}, "kiln/v1", "Agent", "Tool", "Crew",
]  # fmt: skip


class Hang(Exception):
    pass


def seeds() -> list[tuple[str, str]]:
    found = []
    for root in (REPO / "examples", REPO / "tests" / "golden"):
        for path in sorted(root.rglob("*.y*ml")):
            try:
                found.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
    return found


# -- mutations ---------------------------------------------------------------------------


def mutate_bytes(text: str, rng: random.Random) -> str:
    if not text:
        return rng.choice(["\x00", "\t", "\u2028", "{"])
    at = rng.randrange(len(text))
    choice = rng.randrange(5)
    if choice == 0:
        return text[:at] + text[at + 1 :]
    if choice == 1:
        return text[:at] + rng.choice("{}[]:,-#&*!|>'\"%@`\t\r\x00\x85\u2028") + text[at:]
    if choice == 2:
        return text[:at] + chr(rng.randrange(0x20, 0x7F)) + text[at + 1 :]
    if choice == 3:
        return text[:at]  # cut short, no final newline
    return text[:at] + text[at : at + rng.randrange(1, 50)] * rng.randrange(2, 50) + text[at:]


def mutate_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    if len(lines) < 2:
        return text + "\n" + text
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    choice = rng.randrange(4)
    if choice == 0:
        del lines[i]
    elif choice == 1:
        lines.insert(i, lines[j])
    elif choice == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = " " * rng.choice((1, 2, 3, 4, 8)) + lines[i]
    return "\n".join(lines)


def _nodes(data: Any, path: tuple[Any, ...] = (), seen: set[int] | None = None) -> list[Any]:
    """Paths of the nodes (aliases make shared, even recursive, structures: each once)."""
    seen = set() if seen is None else seen
    out: list[Any] = [path]
    if id(data) in seen or len(path) > 40 or len(seen) > 5_000:
        return out
    if isinstance(data, dict):
        seen.add(id(data))
        for key, value in data.items():
            out += _nodes(value, (*path, key), seen)
    elif isinstance(data, list):
        seen.add(id(data))
        for i, value in enumerate(data):
            out += _nodes(value, (*path, i), seen)
    return out


def _set(data: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutate_structure(text: str, rng: random.Random, values: bool) -> str:
    try:
        documents = list(yaml.safe_load_all(text))
        documents = [d for d in documents if d is not None] or [{}]
        yaml.safe_dump_all(documents)  # a recursive one cannot be written back
    except (yaml.YAMLError, RecursionError, ValueError):
        return mutate_lines(text, rng)
    d = rng.randrange(len(documents))
    data = copy.deepcopy(documents[d])
    paths = _nodes(data)
    path = rng.choice(paths)
    if values:
        data = _set(data, path, rng.choice(VALUES))
    else:
        choice = rng.randrange(4)
        if choice == 0 and path:
            data = _set(data, path, None, delete=True)
        elif choice == 1:
            data = _set(data, path, copy.deepcopy(_get(data, rng.choice(paths))))
        elif choice == 2:
            data = _set(data, path, {"nested": {"deeper": _get(data, path)}})
        else:
            data = _set(data, path, [_get(data, path)] * rng.randrange(1, 5))
    documents[d] = data
    try:
        return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        return text


def mutate(text: str, rng: random.Random) -> tuple[str, str]:
    level = rng.choice(("bytes", "lines", "structure", "values"))
    if level == "bytes":
        out = mutate_bytes(text, rng)
    elif level == "lines":
        out = mutate_lines(text, rng)
    else:
        out = mutate_structure(text, rng, values=level == "values")
    for _ in range(rng.choice((0, 0, 1, 2))):  # sometimes more than one
        out = mutate_bytes(out, rng) if rng.random() < 0.5 else mutate_lines(out, rng)
    return level, out


# -- running -----------------------------------------------------------------------------


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def off_file(compilation: Any) -> list[str]:
    """Diagnostics whose line is not a line of their file."""
    bad = []
    for d in compilation.diagnostics:
        text = compilation.files.get(d.span.path)
        if text is None:
            continue
        rows = split_lines(text)
        if not 1 <= d.span.line <= max(len(rows), 1):
            bad.append(f"{d.code} at line {d.span.line} of {len(rows)}")
    return bad


def plan_hash_with_seed(folder: Path, seed: int) -> str:
    code = (
        "import sys; from compiler.pipeline import compile_paths; "
        f"c = compile_paths([{str(folder)!r}]); "
        "print((c.plan or {}).get('plan_hash'), len(c.diagnostics))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}, check=False,
    )  # fmt: skip
    return done.stdout.strip() or done.stderr.strip()[-200:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seed-check-every", type=int, default=500,
                        help="compare plans across two hash seeds every N cases")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "kiln-fuzz")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    corpus = seeds()
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"cases": 0, "internal errors": 0, "hangs": 0, "non-deterministic plans": 0,
              "diagnostics off their file": 0}  # fmt: skip
    slowest = (0.0, "")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kiln-fuzz-"))
    for case in range(args.cases):
        if args.seconds is not None and time.monotonic() - started > args.seconds:
            break
        name, text = rng.choice(corpus)
        level, mutated = mutate(text, rng)
        folder = work / f"case{case % 4}"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / "spec.yaml").write_text(mutated, encoding="utf-8", errors="surrogatepass")
        counts["cases"] += 1
        t0 = time.perf_counter()
        problem = None
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        try:
            compilation = compile_paths([folder])
        except Hang:
            counts["hangs"] += 1
            problem = "hang"
        except Exception:  # noqa: BLE001 - an internal error is what we look for
            counts["internal errors"] += 1
            problem = "internal error\n" + traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - t0
        if took > slowest[0]:
            slowest = (took, f"{name} ({level})")
        if problem is None:
            off = off_file(compilation)
            if off:
                counts["diagnostics off their file"] += 1
                problem = "diagnostics off their file: " + "; ".join(off[:5])
            elif case % args.seed_check_every == 0:
                if plan_hash_with_seed(folder, 1) != plan_hash_with_seed(folder, 2):
                    counts["non-deterministic plans"] += 1
                    problem = "the plan depends on the hash seed"
        if problem is not None:
            saved = args.out / f"case{case}-{level}"
            saved.mkdir(parents=True, exist_ok=True)
            (saved / "spec.yaml").write_text(mutated, encoding="utf-8", errors="surrogatepass")
            (saved / "problem.txt").write_text(f"seed file: {name}\n{problem}\n")
            print(f"case {case} ({name}, {level}): {problem.splitlines()[0]} -> {saved}",
                  file=sys.stderr)  # fmt: skip
    elapsed = time.monotonic() - started
    print(json.dumps({**counts, "seconds": round(elapsed, 1),
                      "cases per second": round(counts["cases"] / max(elapsed, 1e-9), 1),
                      "slowest case s": round(slowest[0], 2), "slowest": slowest[1]}))  # fmt: skip
    bad = sum(v for k, v in counts.items() if k != "cases")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
