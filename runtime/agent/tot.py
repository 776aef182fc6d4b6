"""Tree of thought: at each level propose ``breadth`` next steps, have the model score each,
keep the best and expand it, ``depth`` levels deep; then answer from the best path.

Model calls: ``depth * breadth * 2 + 1`` (plus one if the answer needs a correction).
"""

from __future__ import annotations

from typing import Any

from runtime.agent import prompts
from runtime.agent.job import AgentJob, AnswerRejected, check_answer, parse_json_reply
from runtime.llm.types import Message


async def tot(job: AgentJob) -> Any:
    problem = f"{job.system.strip()}\n\n{job.prompt}".strip()
    path: list[str] = []
    for level in range(1, job.tot_depth + 1):
        branches: list[str] = []
        for _ in range(job.tot_breadth):
            branches.append(await _propose(job, problem, path, branches, level))
        scores = [await _score(job, problem, path, b, level, i) for i, b in enumerate(branches)]
        best = max(range(len(branches)), key=lambda i: scores[i])  # ties: the first
        job.emit(
            "agent.thought",
            text=branches[best],
            level=level,
            branch=best,
            score=scores[best],
            chosen=True,
        )
        path.append(branches[best])
    return await _answer(job, problem, path)


async def _propose(
    job: AgentJob, problem: str, path: list[str], siblings: list[str], level: int
) -> str:
    messages: list[Message] = [
        {"role": "user", "content": prompts.tot_propose(problem, path, siblings)}
    ]
    response, _ = await job.ask(messages, "think", schema=prompts.THOUGHT_SCHEMA)
    reply = parse_json_reply(response.text)
    thought = reply.get("thought") if isinstance(reply, dict) else None
    text = thought if isinstance(thought, str) and thought.strip() else response.text.strip()
    job.thought(response, text, level=level, branch=len(siblings))
    return text


async def _score(
    job: AgentJob, problem: str, path: list[str], candidate: str, level: int, branch: int
) -> float:
    messages: list[Message] = [
        {"role": "user", "content": prompts.tot_score(problem, path, candidate)}
    ]
    response, _ = await job.ask(messages, "score", schema=prompts.SCORE_SCHEMA)
    reply = parse_json_reply(response.text)
    raw = reply.get("score") if isinstance(reply, dict) else None
    # An unreadable score ranks the branch last rather than failing the run.
    score = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    score = min(1.0, max(0.0, score))
    job.thought(response, f"score {score:.2f}", level=level, branch=branch, score=score)
    return score


async def _answer(job: AgentJob, problem: str, path: list[str]) -> Any:
    messages: list[Message] = [
        {"role": "user", "content": prompts.tot_final(problem, path, job.output_schema)}
    ]
    for attempt in (1, 2):
        response, messages = await job.ask(
            messages, "final", schema=prompts.final_branch(job.output_schema)
        )
        messages.append({"role": "assistant", "content": response.text})
        reply = parse_json_reply(response.text)
        thought = reply.get("thought") if isinstance(reply, dict) else None
        job.thought(response, thought if isinstance(thought, str) else response.text)
        if isinstance(reply, str) or "final" not in reply:
            problem_text = reply if isinstance(reply, str) else "it has no 'final'"
        else:
            value, schema_problem = check_answer(reply["final"], job.output_schema)
            if schema_problem is None:
                return value
            problem_text = schema_problem
            job.emit("agent.answer", accepted=False, output=value, error=problem_text)
        if attempt == 2:
            raise AnswerRejected(
                f"the final answer is unusable after one correction: {problem_text}"
            )
        messages.append(
            {
                "role": "user",
                "content": prompts.rejected_answer(
                    problem_text, job.output_schema or {"type": "string"}
                ),
            }
        )
    raise AssertionError("unreachable")
