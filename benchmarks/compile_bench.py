"""How long compiling a large project takes, next to only parsing its YAML.

Run: ``.venv/bin/python benchmarks/compile_bench.py [--repeats N] [--runs N]``

1. Generates a seeded project of 1,000 specs over ~100 files (``benchmarks/generate.py``).
2. Times bare ``yaml.load_all`` of every file (reading included) with PyYAML's pure-Python
   ``SafeLoader`` and with libyaml's ``CSafeLoader``, then the full ``compile_paths``, both
   warm (again and again in one process: the compiler's caches are full) and cold (once in
   a fresh process, imports excluded: what ``kiln validate`` pays). Ratios are taken against
   the loader family the compiler itself parses with (libyaml's parser when PyYAML has it).
   Target: compile < 3x bare YAML.
3. Times each pass of ``compiler/pipeline.py`` on its own, cold and warm, and each check of
   the check pass, so the slowest one is obvious.
4. Times ``kiln validate examples/quickstart`` as a whole process, next to ``python -c pass``.
   Target: < 0.5 s.

Figures are printed, never asserted (these machines are noisy): the exit status is non-zero
only when the generated project does not compile.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.generate import generate_project  # noqa: E402
from compiler.diagnostics import render_text  # noqa: E402
from compiler.pipeline import compile_paths  # noqa: E402
from compiler.pipeline import gc_paused as pipeline_gc_paused  # noqa: E402

T = TypeVar("T")
RATIO_TARGET = 3.0
VALIDATE_TARGET_S = 0.5
Times = dict[str, list[float]]


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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """As ``compile_paths`` runs its passes (see ``compiler.pipeline.gc_paused``), after a
    collection, so garbage from the previous run is not charged to this one."""
    gc.collect()
    with pipeline_gc_paused():
        yield


class Stopwatch:
    """Wall times by name: ``with watch("load"): ...``."""

    def __init__(self) -> None:
        self.times: Times = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.times.setdefault(name, []).append(time.perf_counter() - start)


def run_passes(root: Path, watch: Stopwatch) -> None:
    """The body of ``compiler.pipeline._compile``, one stopwatch per pass and per check."""
    from compiler.hashing import fingerprints
    from compiler.passes import check as check_pass
    from compiler.passes.analyze import analyze
    from compiler.passes.emit import emit
    from compiler.passes.load import load
    from compiler.passes.lower import lower
    from compiler.passes.resolve import resolve
    from compiler.passes.templates import templates
    from compiler.passes.validate import validate

    with watch("load"):
        sources, _ = load([root])
    with watch("validate"):
        specs, _ = validate(sources)
    with watch("templates"):
        parsed, _ = templates(specs, sources.files)
    with watch("resolve"):
        program, _ = resolve(parsed)
    with watch("check"):
        check_pass.check(program, sources.files)
    with watch("fingerprint"):
        prints = fingerprints(program)
    with watch("lower"):
        graphs = lower(program, prints)
    with watch("analyze"):
        reach = analyze(program)
    with watch("emit"):
        emit(program, prints, graphs, reach)


def run_checks(root: Path, watch: Stopwatch) -> None:
    """Each check of the check pass on its own (in a fresh process: on cold caches)."""
    import inspect

    from compiler.passes import check as check_pass
    from compiler.passes.load import load
    from compiler.passes.resolve import resolve
    from compiler.passes.templates import templates
    from compiler.passes.validate import validate

    sources, _ = load([root])
    specs, _ = validate(sources)
    parsed, _ = templates(specs, sources.files)
    program, _ = resolve(parsed)
    for name in sorted(n for n in dir(check_pass) if n.startswith("check_")):
        fn = getattr(check_pass, name)
        takes_files = len(inspect.signature(fn).parameters) > 1
        with watch(name):
            list(fn(program, sources.files) if takes_files else fn(program))


def child(what: str, root: str) -> None:
    """Run in a fresh process: one cold run of ``what``, its times as JSON on stdout."""
    import runtime.cli.app  # noqa: F401 - everything `kiln validate` imports, before timing

    watch = Stopwatch()
    with gc_paused():
        if what == "compile":
            with watch("compile_paths"):
                compile_paths([root])
        elif what == "passes":
            run_passes(Path(root), watch)
        else:
            run_checks(Path(root), watch)
    print(json.dumps(watch.times))


def cold(what: str, root: Path, runs: int) -> Times:
    """Times of ``what`` over ``runs`` fresh processes."""
    out: Times = {}
    code = f"from benchmarks.compile_bench import child; child({what!r}, {str(root)!r})"
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        for name, times in json.loads(done.stdout).items():
            out.setdefault(name, []).extend(times)
    return out


def warm(fn: Callable[[Path, Stopwatch], None], root: Path, repeats: int) -> Times:
    watch = Stopwatch()
    fn(root, watch)  # fill the caches first
    watch.times.clear()
    for _ in range(repeats):
        with gc_paused():
            fn(root, watch)
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


def ms(times: Sequence[float]) -> str:
    return f"{statistics.median(times) * 1000:9.1f} {min(times) * 1000:9.1f}"


def row(label: str, times: Sequence[float], base: float | None = None) -> str:
    ratio = f"{statistics.median(times) / base:6.2f}x" if base else ""
    return f"  {label:<48} {ms(times)}  {ratio}"


def header(title: str, columns: str = "ratio") -> None:
    print(f"\n{title}\n  {'':<48} {'median ms':>9} {'min ms':>9}  {columns}")


def breakdown(title: str, cold_times: Mapping[str, list[float]], warm_times: Times) -> None:
    print(f"\n{title}\n  {'':<22} {'cold median':>11} {'cold min':>9} {'share':>6}   ", end="")
    print(f"{'warm median':>11} {'warm min':>9} {'share':>6}")
    cold_total = sum(statistics.median(t) for t in cold_times.values())
    warm_total = sum(statistics.median(t) for t in warm_times.values())
    for name, c in cold_times.items():
        w = warm_times.get(name, [0.0])
        print(
            f"  {name:<22} {ms(c)} {statistics.median(c) / cold_total:6.1%}   "
            f"{ms(w)} {statistics.median(w) / warm_total:6.1%}"
        )
    slowest = max(cold_times, key=lambda n: statistics.median(cold_times[n]))
    print(f"  slowest (cold): {slowest}; total cold {cold_total * 1000:.0f} ms", end="")
    print(f", warm {warm_total * 1000:.0f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each in-process step")
    parser.add_argument("--runs", type=int, default=10, help="runs of each subprocess")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per cold step")
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
        result = compile_paths([root])
        if not result.ok:
            print(render_text(result.errors[:20], result.files), file=sys.stderr)
            print(f"FAIL: the generated project has {len(result.errors)} errors", file=sys.stderr)
            return 1
        print(f"compiles with no error: {len(result.plan['specs']) if result.plan else 0} specs")

        c_loader = getattr(yaml, "CSafeLoader", None)
        family = "CSafeLoader" if c_loader is not None else "SafeLoader"
        header(f"1000 specs ({args.repeats} runs; cold: {args.cold_runs} fresh processes)")
        py_times, docs = timed(bare_yaml(files, yaml.SafeLoader), args.repeats)
        c_times = timed(bare_yaml(files, c_loader), args.repeats)[0] if c_loader else None
        base = statistics.median(c_times or py_times)
        print(row(f"yaml.load_all, SafeLoader (pure Python) [{docs}]", py_times, base))
        if c_loader is not None and c_times:
            print(row("yaml.load_all, CSafeLoader (libyaml)", c_times, base))
            events = timed(yaml_events(files, c_loader), args.repeats)[0]
            print(row("yaml.parse events only, CSafeLoader", events, base))
        warm_times = timed(lambda: compile_paths([root]), args.repeats)[0]
        cold_times = cold("compile", root, args.cold_runs)["compile_paths"]
        print(row("compile_paths, warm (same process, caches full)", warm_times, base))
        print(row("compile_paths, cold (fresh process, no imports)", cold_times, base))
        for label, times in (("cold", cold_times), ("warm", warm_times)):
            ratio = statistics.median(times) / base
            verdict = "ok" if ratio < RATIO_TARGET else "OVER TARGET"
            print(
                f"  ratio compile ({label}) / bare {family}: {ratio:.2f}x "
                f"(target < {RATIO_TARGET:.0f}x: {verdict})"
            )

        breakdown(
            "per pass (1000 specs)",
            cold("passes", root, args.cold_runs),
            warm(run_passes, root, args.repeats),
        )
        breakdown(
            "check pass, per check",
            cold("checks", root, args.cold_runs),
            warm(run_checks, root, args.repeats),
        )

        header(f"whole process ({args.runs} runs; the big project: {args.cold_runs})", "")
        argv_big = [sys.executable, "-m", "runtime.cli", "validate", str(root)]
        print(row("kiln validate <the 1000-spec project>", process_times(argv_big, args.cold_runs)))

    python = process_times([sys.executable, "-c", "pass"], args.runs)
    imports = process_times([sys.executable, "-c", "import runtime.cli.app"], args.runs)
    validate = process_times(
        [sys.executable, "-m", "runtime.cli", "validate", "examples/quickstart"], args.runs
    )
    print(row("python -c pass", python))
    print(row("python -c 'import runtime.cli.app'", imports))
    print(row("kiln validate examples/quickstart", validate))
    median = statistics.median(validate)
    verdict = "ok" if median < VALIDATE_TARGET_S else "OVER TARGET"
    print(f"  kiln validate: {median:.3f}s (target < {VALIDATE_TARGET_S}s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
