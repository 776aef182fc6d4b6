"""Long-term memory recall: how often the fact that answers a question comes back, by
embedder and by retrieval weights.

Run: ``.venv/bin/python benchmarks/memory_recall_bench.py [--embedders default,sentence]
[--litellm MODEL] [--misses]``

The suite is ``tests/memory_recall_cases.py``: 200 facts a user tells a personal assistant
over 20 sessions (59 simulated days), and 50 questions asked two days after the last one,
each answered by one fact (15 share its key words, 35 paraphrase it). Facts go in through
the real policy layer (``MemoryService.remember`` with a scripted extractor, one run per
fact, at its session's time) into embedded ChromaDB in a temporary folder; questions come
back through ``MemoryService.recall`` with ``top_k`` 1, 3 and 5 (each a recall of its own:
the service fetches ``4 * top_k`` candidates and reranks them). For each embedder:

- hit@1, hit@3, hit@5 over all questions and by kind, ranked two ways: the policy's
  default mix (relevance 0.5, recency 0.3, importance 0.2, half-life 30 days) and
  relevance alone (1/0/0). The extractor gives every fact one importance, so the mix
  differs from relevance alone by recency only;
- which questions the two rankings disagree on at 5, with the age of the answering fact:
  recency lifts a changed fact's newer version, and pushes an older right answer out;
- the wall time of the 200 writes and of one recall.

Embedders: ``default`` (lexical hashing), ``sentence`` (all-MiniLM-L6-v2, when installed),
and ``litellm/MODEL`` only with ``--litellm MODEL`` (it calls the provider). Nothing is
asserted; ``tests/integration/test_memory_recall.py`` holds the floors.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from runtime.embed import EmbedderError, get_embedder  # noqa: E402
from tests import memory_recall_cases as suite  # noqa: E402
from tests.memory_recall_cases import Kind, Report  # noqa: E402

KS = (1, 3, 5)
WEIGHTS = {"mix 0.5/0.3/0.2": suite.DEFAULT_WEIGHTS, "relevance only": suite.RELEVANCE_ONLY}
KINDS: tuple[tuple[str, Kind | None], ...] = (
    ("all", None),
    ("lexical", "lexical"),
    ("paraphrase", "paraphrase"),
)


def unavailable(spec: str) -> str | None:
    """Why the embedder ``spec`` cannot run here; ``None`` when it can."""
    if spec == "sentence" and importlib.util.find_spec("sentence_transformers") is None:
        return "sentence-transformers is not installed (pip install 'agentkiln[embed]')"
    try:
        get_embedder(spec)
    except (EmbedderError, ValueError) as exc:
        return str(exc)
    return None


def age_of(question: suite.Question) -> int:
    """Days between the session that told the answer and the question."""
    size = len(suite.FACTS) // len(suite.SESSION_DAYS)
    return suite.ASKED_ON_DAY - suite.SESSION_DAYS[question.answer // size]


def print_rates(spec: str, reports: dict[str, Report]) -> None:
    print(f"\n{spec}")
    head = "  " + f"{'ranking':<17}{'questions':<16}" + "".join(f"{f'hit@{k}':>8}" for k in KS)
    print(head)
    for label, report in reports.items():
        for name, kind in KINDS:
            count = sum(kind is None or q.kind == kind for q in suite.QUESTIONS)
            rates = "".join(f"{report.hit_rate(k, kind):>8.2f}" for k in KS)
            print(f"  {label if name == 'all' else '':<17}{f'{name} ({count})':<16}{rates}")


def print_disagreements(mix: Report, relevance: Report, k: int = 5) -> None:
    pairs = list(zip(mix.outcomes[k], relevance.outcomes[k], strict=True))
    lost = [a.question for a, b in pairs if b.hit(k) and not a.hit(k)]
    won = [a.question for a, b in pairs if a.hit(k) and not b.hit(k)]
    print(f"  at {k}: the mix misses {len(lost)} that relevance alone finds, finds {len(won)}")
    for verb, questions in (("misses", lost), ("finds", won)):
        for q in questions:
            print(f"    mix {verb:<6} {q.text!r} (answer {age_of(q)} days old)")


def print_times(write_s: float, reports: dict[str, Report]) -> None:
    facts = len(suite.FACTS)
    print(f"  write: {facts} remembers in {write_s:.2f} s ({write_s / facts * 1000:.1f} ms each)")
    for label, report in reports.items():
        each = ", ".join(
            f"top_k {k} {report.recall_s[k] / len(suite.QUESTIONS) * 1000:.1f} ms"
            for k in sorted(report.recall_s)
        )
        print(f"  recall ({label}), mean per question: {each}")


async def measure(spec: str, show_misses: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="kiln-recall-bench-") as tmp:
        folder = Path(tmp)
        write_s = await suite.tell(spec, folder)
        reports = {
            label: await suite.ask(spec, folder, weights=weights, ks=KS)
            for label, weights in WEIGHTS.items()
        }
    print_rates(spec, reports)
    print_disagreements(reports["mix 0.5/0.3/0.2"], reports["relevance only"])
    print_times(write_s, reports)
    if show_misses:
        for report in reports.values():
            print(report.summary())


async def main(specs: Sequence[str], show_misses: bool) -> None:
    print(
        f"recall of {len(suite.QUESTIONS)} questions over {len(suite.FACTS)} facts told in "
        f"{len(suite.SESSION_DAYS)} sessions (days {suite.SESSION_DAYS[0]}-"
        f"{suite.SESSION_DAYS[-1]}), asked on day {suite.ASKED_ON_DAY}"
    )
    for spec in specs:
        reason = unavailable(spec)
        if reason is not None:
            print(f"\n{spec}: skipped ({reason})")
            continue
        await measure(spec, show_misses)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embedders",
        default="default,sentence",
        help="comma-separated embedder specs (default: default,sentence)",
    )
    parser.add_argument(
        "--litellm",
        metavar="MODEL",
        help="also run litellm/MODEL (e.g. openai/text-embedding-3-small); calls the provider",
    )
    parser.add_argument(
        "--misses", action="store_true", help="print every miss at 5 with what came instead"
    )
    args = parser.parse_args()
    specs = [s.strip() for s in args.embedders.split(",") if s.strip()]
    if args.litellm:
        specs.append(f"litellm/{args.litellm}")
    anyio.run(main, specs, args.misses)
