"""Crews on the executor: order, concurrency, data along edges, managers and delegation."""

from __future__ import annotations

import pytest

from runtime.run import RunSetupError
from tests.helpers import EXAMPLES, WriteSpecs
from tests.runtime_kit import agent, normalised, run_specs

REPORT = "{type: object, properties: {n: {type: integer}, why: {type: string}}, required: [n]}"


def _crew(process: str, tasks: str, extra: str = "") -> str:
    return (
        "apiVersion: kiln/v1\nkind: Crew\nmetadata: {name: team}\nspec:\n"
        f"  process: {process}\n  inputs: {{topic: {{type: string}}}}\n{extra}  tasks:\n{tasks}"
    )


DIAMOND = """\
    - {name: plan, agent: solver, prompt: "Plan {{ inputs.topic }}"}
    - {name: left, agent: solver, prompt: "Left of {{ tasks.plan.output.n }}"}
    - {name: right, agent: solver, prompt: "Right of {{ tasks.plan.output }}"}
    - name: join
      agent: solver
      prompt: "Join {{ tasks.left.output.n }} and {{ tasks.right.output.n }}"
"""
DIAMOND_SCRIPT = """
plan: [{thought: p, final: {n: 1, why: start}}]
left: [{thought: l, final: {n: 2}, delay_ms: 150}]
right: [{thought: r, final: {n: 3}, delay_ms: 150}]
join: [{thought: j, final: {n: 5}}]
"""


def test_parallel_branches_run_concurrently_and_typed_outputs_flow(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    ran = run_specs(folder, DIAMOND_SCRIPT, crew="team", inputs={"topic": "tides"})
    assert ran.result.status == "succeeded"
    assert ran.result.output == {"n": 5}
    order = [(e.type, e.task) for e in ran.events if e.type in ("task.start", "task.complete")]
    # Both branches start before either finishes: they overlap in time.
    assert order.index(("task.start", "right")) < order.index(("task.complete", "left"))
    assert order.index(("task.start", "left")) < order.index(("task.complete", "right"))
    assert order[-2:] == [("task.start", "join"), ("task.complete", "join")]
    prompts = {e.task: e.data["prompt"] for e in ran.of("task.start")}
    assert prompts == {
        "plan": "Plan tides",
        "left": "Left of 1",
        "right": 'Right of {"n": 1, "why": "start"}',  # a typed output prints as JSON
        "join": "Join 2 and 3",
    }
    assert {t: r.status for t, r in ran.result.tasks.items()} == dict.fromkeys(
        ["plan", "left", "right", "join"], "succeeded"
    )


def test_a_sequential_crew_runs_in_order(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=REPORT),
            "c.yaml": _crew("sequential", DIAMOND),
        }
    )
    ran = run_specs(folder, DIAMOND_SCRIPT, crew="team", inputs={"topic": "x"})
    assert ran.result.ok
    starts = [e.task for e in ran.of("task.start")]
    assert starts == ["plan", "left", "right", "join"]
    order = [(e.type, e.task) for e in ran.events if e.type in ("task.start", "task.complete")]
    assert order.index(("task.complete", "left")) < order.index(("task.start", "right"))


def test_a_failed_task_fails_the_run_and_cancels_its_siblings(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    script = DIAMOND_SCRIPT.replace(
        "left: [{thought: l, final: {n: 2}, delay_ms: 150}]",
        "left: [{thought: l, final: {bad: 1}}, {thought: l, final: {bad: 2}}]",
    )
    ran = run_specs(folder, script, crew="team", inputs={"topic": "x"})
    assert ran.result.status == "failed"
    assert ran.result.error is not None and ran.result.error.startswith("task 'left':")
    assert "join" not in ran.result.tasks  # never started
    assert ran.result.tasks["left"].status == "failed"
    assert "right" not in ran.result.tasks or ran.result.tasks["right"].status != "succeeded"


def test_scripted_runs_are_deterministic(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    first = run_specs(folder, DIAMOND_SCRIPT, crew="team", inputs={"topic": "x"})
    second = run_specs(folder, DIAMOND_SCRIPT, crew="team", inputs={"topic": "x"})
    assert first.result.run_id != second.result.run_id
    assert normalised(first.events) == normalised(second.events)


def test_the_examples_run_offline_on_their_scripts() -> None:
    quick = run_specs(
        EXAMPLES / "quickstart",
        (EXAMPLES / "scripted" / "quickstart.yaml").read_text(),
        agent="assistant",
        text="How many words are in 'the quick brown fox jumps over the lazy dog', times 7?",
    )
    assert quick.result.ok
    assert quick.result.output == {"answer": "The sentence has 9 words, and 9 times 7 is 63."}
    crew = run_specs(
        EXAMPLES / "research-crew",
        (EXAMPLES / "scripted" / "research-crew.yaml").read_text(),
        crew="research",
        text="tides",
    )
    assert crew.result.ok
    assert crew.result.output["title"] == "Tides in one minute"
    # research's python tool ran in a sandbox, where there is no notes folder: no matches
    (search,) = [e for e in crew.of("tool.result") if e.data["tool"] == "search_notes"]
    assert search.task == "research"
    assert (search.data["status"], search.data["output"]) == ("ok", {"matches": []})
    write_prompt = next(e for e in crew.of("task.start") if e.task == "write").data["prompt"]
    assert "confidence 90%" in write_prompt and "The Moon drives tides" in write_prompt


def test_a_hierarchical_manager_hands_out_tasks_as_tools(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]"),
            "boss.yaml": agent("boss", tools="[]"),
            "c.yaml": _crew(
                "hierarchical",
                """\
    - {name: draft, agent: solver, prompt: "Draft on {{ inputs.topic }}"}
    - {name: review, agent: solver, prompt: "Review {{ tasks.draft.output }}"}
""",
                extra="  manager: boss\n",
            ),
        }
    )
    ran = run_specs(
        folder,
        """
        boss:
          - {thought: review first?, tool: task_review, input: {}}
          - {thought: draft then, tool: task_draft, input: {instructions: be brief}}
          - {thought: now review, tool: task_review, input: {}}
          - {thought: done, final: all good}
        draft: [{thought: d, final: the draft}]
        review: [{thought: r, final: looks fine}]
        """,
        crew="team",
        inputs={"topic": "tides"},
    )
    assert ran.result.ok and ran.result.output == "all good"
    results = [(r.data["tool"], r.data["status"]) for r in ran.of("tool.result")]
    assert results == [("task_review", "error"), ("task_draft", "ok"), ("task_review", "ok")]
    assert ran.of("tool.result")[0].data["error"] == "task review needs the output of draft first"
    prompts = {e.task: e.data["prompt"] for e in ran.of("task.start")}
    assert prompts["draft"].endswith("From your manager: be brief")
    assert prompts["review"] == "Review the draft"
    assert ran.result.tasks["review"].output == "looks fine"


def test_an_agent_delegates_to_another(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", extra="delegate_to: [helper]\n"),
            "h.yaml": agent("helper", tools="[calculator]"),
        }
    )
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: ask, tool: ask_helper, input: {request: "what is 6*7?"}}
          - {thought: got it, final: "42"}
        helper:
          - {thought: compute, tool: calculator, input: {expression: "6*7"}}
          - {thought: done, final: "42"}
        """,
        agent="solver",
    )
    assert ran.result.ok and ran.result.output == "42"
    agents = [e.agent for e in ran.of("agent.answer")]
    assert agents == ["helper", "solver"]
    outer = [r for r in ran.of("tool.result") if r.data["tool"] == "ask_helper"]
    assert outer[0].data["output"] == "42"


def test_cot_answers_without_tools(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(strategy="cot", output_schema=REPORT)})
    ran = run_specs(folder, "solver: [{thought: 'step 1, step 2', final: {n: 2}}]\n")
    assert ran.result.ok and ran.result.output == {"n": 2}
    assert ran.of("agent.thought")[0].data["text"] == "step 1, step 2"
    assert not ran.of("agent.action")


def test_tot_scores_branches_and_expands_the_best(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{"a.yaml": agent(strategy="tot", tools="[]", extra="tot: {breadth: 2, depth: 2}\n")}
    )
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: a1}
          - {thought: a2}
          - {score: 0.2}
          - {score: 0.9}
          - {thought: b1}
          - {thought: b2}
          - {score: 0.7}
          - {score: 0.1}
          - {thought: use a2 then b1, final: answer}
        """,
    )
    assert ran.result.ok and ran.result.output == "answer"
    chosen = [e.data["text"] for e in ran.of("agent.thought") if e.data.get("chosen")]
    assert chosen == ["a2", "b1"]
    assert ran.of("agent.answer")[0].data["iterations"] == 9


def test_a_tot_script_with_the_wrong_turn_shape_is_a_clear_error(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(strategy="tot", tools="[]")})
    ran = run_specs(folder, "solver:\n  - {thought: t, final: too early}\n")
    assert ran.result.status == "failed"
    assert ran.result.error is not None
    assert "turn 1 of 'solver'" in ran.result.error
    assert "is a final turn, but the agent asked for a thought" in ran.result.error


def test_a_crew_timeout_ends_the_whole_run(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=REPORT),
            "c.yaml": _crew("parallel", DIAMOND, extra="  limits: {timeout_s: 0.1}\n"),
        }
    )
    script = DIAMOND_SCRIPT.replace("delay_ms: 150", "delay_ms: 5000")
    ran = run_specs(folder, script, crew="team", inputs={"topic": "x"})
    assert ran.result.status == "limit_exceeded" and ran.result.limit == "timeout_s"
    assert ran.result.error == "timeout_s exceeded (Crew/team): still running after 0.1 s"
    assert ran.result.duration_ms < 5000


ITEMS = "{type: object, properties: {items: {type: array}, values: {type: string}}}"


def test_a_typed_output_field_named_like_a_dict_method_reads_the_field(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=ITEMS),
            "c.yaml": _crew(
                "sequential",
                """\
    - {name: one, agent: solver, prompt: "List"}
    - name: two
      agent: solver
      prompt: "{{ tasks.one.output.items | join(', ') }} / {{ tasks.one.output.values }}"
""",
            ),
        }
    )
    ran = run_specs(
        folder,
        "one: [{thought: t, final: {items: [a, b], values: v}}]\n"
        "two: [{thought: t, final: {items: []}}]\n",
        crew="team",
        inputs={"topic": "x"},
    )
    assert ran.result.ok
    assert ran.of("task.start")[1].data["prompt"] == "a, b / v"


def test_a_prompt_that_fails_to_render_fails_its_task_not_kiln(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=REPORT),
            "c.yaml": _crew(
                "sequential",
                """\
    - {name: one, agent: solver, prompt: "Go"}
    - {name: two, agent: solver, prompt: "{{ tasks.one.output.n // 0 }}"}
""",
            ),
        }
    )
    script = "one: [{thought: t, final: {n: 1}}]\ntwo: []\n"
    ran = run_specs(folder, script, crew="team", inputs={"topic": "x"})
    assert ran.result.status == "failed"
    assert ran.result.error == (
        "task 'two': cannot render the prompt of task 'two': "
        "ZeroDivisionError: integer division or modulo by zero"
    )


def test_an_agent_serving_two_tasks_needs_turns_per_task(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    with pytest.raises(RunSetupError) as caught:
        run_specs(
            folder, "solver: [{thought: t, final: {n: 1}}]\n", crew="team", inputs={"topic": "x"}
        )
    assert "agent 'solver' serves tasks 'plan', 'left', 'right', 'join'" in str(caught.value)
    assert "key the turns by task name" in str(caught.value)


def test_a_delegate_inside_a_task_replays_its_own_turns(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", extra="delegate_to: [helper]\n"),
            "h.yaml": agent("helper", tools="[]"),
            "c.yaml": _crew("sequential", '    - {name: job, agent: solver, prompt: "Go"}\n'),
        }
    )
    ran = run_specs(
        folder,
        """
        job:
          - {thought: ask, tool: ask_helper, input: {request: help}}
          - {thought: thanks, final: done}
        helper:
          - {thought: helping, final: helped}
        """,
        crew="team",
        inputs={"topic": "x"},
    )
    assert ran.result.ok and ran.result.output == "done"
    assert [e.data["output"] for e in ran.of("tool.result")] == ["helped"]


def test_siblings_cancelled_by_a_failure_are_recorded_as_cancelled(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(
        **{"a.yaml": agent(tools="[]", output_schema=REPORT), "c.yaml": _crew("parallel", DIAMOND)}
    )
    script = DIAMOND_SCRIPT.replace(
        "left: [{thought: l, final: {n: 2}, delay_ms: 150}]",
        "left: [{thought: l, final: {bad: 1}}, {thought: l, final: {bad: 2}}]",
    ).replace("delay_ms: 150", "delay_ms: 2000")
    ran = run_specs(folder, script, crew="team", inputs={"topic": "x"})
    assert ran.result.tasks["right"].status == "cancelled"
    completes = {e.task: e.data["status"] for e in ran.of("task.complete")}
    assert completes == {"plan": "succeeded", "left": "failed", "right": "cancelled"}


CONTEXT_TASKS = """\
    - {name: facts, agent: solver, prompt: "Facts on {{ inputs.topic }}"}
    - {name: count, agent: solver, prompt: "Count them"}
    - {name: write, agent: solver, prompt: "Write it up"}
"""
CONTEXT_SCRIPT = """
facts: [{thought: f, final: {n: 3, why: three facts}}]
count: [{thought: c, final: {n: 4}}]
write: [{thought: w, final: {n: 5}}]
"""


def test_context_previous_gives_each_task_the_earlier_outputs(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=REPORT),
            "c.yaml": _crew("sequential", CONTEXT_TASKS, "  context: previous\n"),
        }
    )
    ran = run_specs(folder, CONTEXT_SCRIPT, crew="team", inputs={"topic": "tides"})
    assert ran.result.status == "succeeded", ran.result.error
    prompts = {e.task: e.data["prompt"] for e in ran.of("task.start")}
    assert prompts["facts"] == "Facts on tides"
    assert prompts["count"] == (
        'Count them\n\nResults of the earlier tasks:\n\n### facts\n{"n": 3, "why": "three facts"}'
    )
    assert prompts["write"].startswith("Write it up\n\nResults of the earlier tasks:")
    assert '### facts\n{"n": 3' in prompts["write"] and '### count\n{"n": 4}' in prompts["write"]


def test_context_previous_is_checked_like_a_written_template(write_specs: WriteSpecs) -> None:
    from compiler.pipeline import compile_paths

    extra = "    - {name: extra, agent: solver, prompt: Last, depends_on: [facts]}\n"
    tasks = CONTEXT_TASKS + extra
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]", output_schema=REPORT),
            "c.yaml": _crew("parallel", tasks, "  context: previous\n"),
        }
    )
    result = compile_paths([folder])
    codes = {d.code for d in result.diagnostics}
    assert "K4005" in codes  # 'extra' reads count and write, which it does not depend on
