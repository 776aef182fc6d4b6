"""How long compiling a large project takes, next to only parsing its YAML.

Run: ``.venv/bin/python benchmarks/compile_bench.py [--repeats N] [--runs N]``

1. Generates a seeded project of 1,000 specs over ~100 files (``benchmarks/generate.py``).
2. Times bare ``yaml.load_all`` of every file (reading included) with PyYAML's pure-Python
   ``SafeLoader`` and with libyaml's ``CSafeLoader``, then the full ``compile_paths``; the
   ratio is taken against the loader family the compiler itself parses with (libyaml's
   parser when PyYAML has it). Target: compile < 3x bare YAML.
3. Times each pass of ``compiler/pipeline.py`` on its own, and each check of the check pass,
   so the slowest one is obvious.
4. Times ``kiln validate examples/quickstart`` as a whole process, next to ``python -c pass``.
   Target: < 0.5 s.

Figures are printed, never asserted (these machines are noisy): the exit status is non-zero
only when the generated project does not compile.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.generate import generate_project  # noqa: E402
from compiler.diagnostics import render_text  # noqa: E402
from compiler.pipeline import compile_paths  # noqa: E402

T = TypeVar("T")
RATIO_TARGET = 3.0
VALIDATE_TARGET_S = 0.5


def timed(fn: Callable[[], T], repeats: int) -> tuple[list[float], T]:
    """Wall times of ``repeats`` calls of ``fn``, and the last result."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def bare_yaml(files: Sequence[Path], loader: Any) -> Callable[[], int]:
    def run() -> int:
        count = 0
        for path in files:
            count += len(list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader)))
        return count

    return run


def yaml_events(files: Sequence[Path], loader: Any) -> Callable[[], int]:
    """Only the parser's event stream: what the compiler's loader composes from."""

    def run() -> int:
        count = 0
        for path in files:
            for _ in yaml.parse(path.read_text(encoding="utf-8"), Loader=loader):
                count += 1
        return count

    return run


def row(label: str, times: Sequence[float], base: float | None = None) -> str:
    median, best = statistics.median(times), min(times)
    ratio = f"{median / base:6.2f}x" if base else ""
    return f"  {label:<44} {median * 1000:9.1f} {best * 1000:9.1f}  {ratio}"


def header(title: str) -> None:
    print(f"\n{title}\n  {'':<44} {'median ms':>9} {'min ms':>9}  ratio")


class Stopwatch:
    """Wall times by name: ``with watch("load"): ...``."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.times.setdefault(name, []).append(time.perf_counter() - start)


def passes(root: Path, repeats: int) -> dict[str, list[float]]:
    """Each pass of ``compiler/pipeline.py`` timed on its own, in order."""
    from compiler.hashing import fingerprints
    from compiler.passes.analyze import analyze
    from compiler.passes.check import check
    from compiler.passes.emit import emit
    from compiler.passes.load import load
    from compiler.passes.lower import lower
    from compiler.passes.resolve import resolve
    from compiler.passes.templates import templates
    from compiler.passes.validate import validate

    watch = Stopwatch()
    for _ in range(repeats):
        with watch("load"):
            sources, _ = load([root])
        with watch("validate"):
            specs, _ = validate(sources)
        with watch("templates"):
            parsed, _ = templates(specs, sources.files)
        with watch("resolve"):
            program, _ = resolve(parsed)
        with watch("check"):
            check(program, sources.files)
        with watch("fingerprint"):
            prints = fingerprints(program)
        with watch("lower"):
            graphs = lower(program, prints)
        with watch("analyze"):
            reach = analyze(program)
        with watch("emit"):
            emit(program, prints, graphs, reach)
    return watch.times


def checks(root: Path, repeats: int) -> dict[str, list[float]]:
    """Each check of the check pass timed on its own (those that take files get them)."""
    from compiler.passes import check as check_pass
    from compiler.passes.load import load
    from compiler.passes.resolve import resolve
    from compiler.passes.templates import templates
    from compiler.passes.validate import validate

    sources, _ = load([root])
    specs, _ = validate(sources)
    parsed, _ = templates(specs, sources.files)
    program, _ = resolve(parsed)
    found = {n: getattr(check_pass, n) for n in dir(check_pass) if n.startswith("check_")}
    watch = Stopwatch()
    for _ in range(repeats):
        for name, fn in found.items():
            takes_files = len(inspect.signature(fn).parameters) > 1
            with watch(name):
                list(fn(program, sources.files) if takes_files else fn(program))
    return watch.times


def process_times(argv: Sequence[str], runs: int) -> list[float]:
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            print(f"  ! {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each in-process step")
    parser.add_argument("--runs", type=int, default=10, help="runs of each subprocess")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        files = generate_project(root, seed=args.seed)
        size = sum(p.stat().st_size for p in files)
        print(
            f"project: 1000 specs in {len(files)} files, {size / 1024:.0f} KiB "
            f"(generated in {time.perf_counter() - started:.2f}s)"
        )
        cold, result = timed(lambda: compile_paths([root]), 1)
        if not result.ok:
            print(render_text(result.errors[:20], result.files), file=sys.stderr)
            print(f"FAIL: the generated project has {len(result.errors)} errors", file=sys.stderr)
            return 1
        specs = len(result.plan["specs"]) if result.plan else 0
        print(f"first compile (cold caches): {cold[0] * 1000:.0f} ms, {specs} specs in the plan")

        c_loader = getattr(yaml, "CSafeLoader", None)
        compiler_uses_c = c_loader is not None
        header(f"1000 specs, {args.repeats} runs")
        py_times, docs = timed(bare_yaml(files, yaml.SafeLoader), args.repeats)
        c_times = timed(bare_yaml(files, c_loader), args.repeats)[0] if c_loader else None
        base = statistics.median(c_times if c_times else py_times)
        print(row(f"yaml.load_all, SafeLoader (pure Python) [{docs}]", py_times, base))
        if c_times:
            print(row("yaml.load_all, CSafeLoader (libyaml)", c_times, base))
            print(
                row(
                    "yaml.parse events only, CSafeLoader",
                    timed(yaml_events(files, c_loader), args.repeats)[0],
                    base,
                )
            )
        compile_times, _ = timed(lambda: compile_paths([root]), args.repeats)
        print(row("compile_paths (all passes)", compile_times, base))
        ratio = statistics.median(compile_times) / base
        family = "CSafeLoader" if compiler_uses_c else "SafeLoader"
        verdict = "ok" if ratio < RATIO_TARGET else "OVER TARGET"
        target = f"target < {RATIO_TARGET:.0f}x: {verdict}"
        print(f"  ratio compile / bare {family}: {ratio:.2f}x ({target})")

        header("per pass (1000 specs)")
        per_pass = passes(root, args.repeats)
        total = sum(statistics.median(t) for t in per_pass.values())
        for name, times in per_pass.items():
            share = statistics.median(times) / total
            print(row(name, times) + f"{share:6.1%}")
        slowest = max(per_pass, key=lambda n: statistics.median(per_pass[n]))
        print(f"  slowest pass: {slowest}")
        header("check pass, per check")
        for name, times in checks(root, args.repeats).items():
            print(row(name, times))

    header(f"whole process, {args.runs} runs")
    python = process_times([sys.executable, "-c", "pass"], args.runs)
    validate = process_times(
        [sys.executable, "-m", "runtime.cli", "validate", "examples/quickstart"], args.runs
    )
    print(row("python -c pass", python))
    print(row("kiln validate examples/quickstart", validate))
    median = statistics.median(validate)
    verdict = "ok" if median < VALIDATE_TARGET_S else "OVER TARGET"
    print(f"  kiln validate: {median:.3f}s (target < {VALIDATE_TARGET_S}s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
