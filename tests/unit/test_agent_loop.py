"""The ReAct loop on the scripted model: actions, observations, faults and limits."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runtime.events import Event
from runtime.run import RunSetupError, execute, prepare
from runtime.trace import TraceStore
from tests.helpers import WriteSpecs
from tests.runtime_kit import agent, run_specs

SCHEMA = "{type: object, properties: {answer: {type: string}}, required: [answer]}"


def test_actions_observations_and_a_typed_answer(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(output_schema=SCHEMA)})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: count, tool: word_count, input: {text: a b c}}
          - {thought: times two, tool: calculator, input: {expression: "3 * 2"}}
          - {thought: done, final: {answer: "6"}}
        """,
    )
    assert ran.result.status == "succeeded"
    assert ran.result.output == {"answer": "6"}
    results = ran.of("tool.result")
    assert [r.data["output"] for r in results] == [
        {"words": 3, "characters": 5, "lines": 1},
        {"result": 6},
    ]
    assert [e.step for e in ran.of("agent.thought")] == [1, 2, 3]
    assert ran.types()[0] == "run.start" and ran.types()[-1] == "run.complete"
    assert [e.seq for e in ran.events] == list(range(1, len(ran.events) + 1))
    assert ran.result.usage.total_tokens > 0


def test_a_tool_that_raises_is_an_observation_and_the_agent_carries_on(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: divide, tool: calculator, input: {expression: "1 / 0"}}
          - {thought: that failed, final: undefined}
        """,
    )
    assert ran.result.status == "succeeded"
    (result,) = ran.of("tool.result")
    assert result.data["status"] == "error"
    assert "division by zero" in result.data["error"]


def test_a_malformed_reply_is_answered_with_an_error_observation(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(
        folder,
        """
        solver:
          - {raw: "I think I will use the calculator"}
          - {raw: '{"thought": "no action"}'}
          - {raw: '```json\n{"thought": "ok", "final": "fine"}\n```'}
        """,
    )
    assert ran.result.status == "succeeded" and ran.result.output == "fine"
    malformed = [e.data.get("malformed") for e in ran.of("agent.thought")]
    assert malformed[0] is not None and malformed[0].startswith("not JSON")
    assert malformed[1] == "it has neither 'tool' nor 'final'"
    assert malformed[2] is None


def test_tool_input_is_validated_before_any_call(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: wrong, tool: calculator, input: {expr: "1 + 1"}}
          - {thought: unknown, tool: calculator, input: {expression: 5}}
          - {thought: give up, final: none}
        """,
    )
    statuses = [(r.data["status"], r.data["error"]) for r in ran.of("tool.result")]
    assert (
        statuses[0][0] == "invalid_input"
        and "'expression' is a required property" in (statuses[0][1])
    )
    assert statuses[1][0] == "invalid_input" and "is not of type 'string'" in statuses[1][1]


def test_the_same_call_three_times_is_answered_then_a_fourth_ends_the_run(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    same = "- {thought: again, tool: calculator, input: {expression: '1+1'}}\n"
    ran = run_specs(folder, "solver:\n" + "  " + "  ".join([same] * 4))
    assert ran.result.status == "loop_detected"
    statuses = [r.data["status"] for r in ran.of("tool.result")]
    assert statuses == ["ok", "ok", "loop", "loop"]
    assert "3 times in a row" in ran.of("run.error")[0].data["error"] or "4 times" in str(
        ran.result.error
    )


def test_the_loop_guard_threshold_comes_from_the_spec(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(limits="{max_repeated_tool_calls: 2}")})
    same = "- {thought: again, tool: calculator, input: {expression: '1+1'}}\n"
    ran = run_specs(folder, "solver:\n  " + "  ".join([same] * 2) + "  - {thought: ok, final: x}\n")
    assert [r.data["status"] for r in ran.of("tool.result")] == ["ok", "loop"]
    assert ran.result.status == "succeeded"


def test_a_different_input_resets_the_loop_guard(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: a, tool: calculator, input: {expression: '1+1'}}
          - {thought: a, tool: calculator, input: {expression: '1+1'}}
          - {thought: b, tool: calculator, input: {expression: '1+2'}}
          - {thought: a, tool: calculator, input: {expression: '1+1'}}
          - {thought: a, tool: calculator, input: {expression: '1+1'}}
          - {thought: done, final: x}
        """,
    )
    assert ran.result.status == "succeeded"
    assert all(r.data["status"] == "ok" for r in ran.of("tool.result"))


def test_an_answer_breaking_the_output_schema_is_fed_back_once(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(output_schema=SCHEMA)})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: quick, final: {reply: "6"}}
          - {thought: fixed, final: {answer: "6"}}
        """,
    )
    assert ran.result.status == "succeeded" and ran.result.output == {"answer": "6"}
    rejected, accepted = ran.of("agent.answer")
    assert rejected.data["accepted"] is False
    assert "'answer' is a required property" in rejected.data["error"]
    assert accepted.data["accepted"] is True


def test_an_answer_breaking_the_schema_twice_fails_the_run_clearly(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(output_schema=SCHEMA)})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: quick, final: {reply: "6"}}
          - {thought: still wrong, final: 6}
        """,
    )
    assert ran.result.status == "failed"
    assert ran.result.error is not None
    assert "does not match the output schema after one correction" in ran.result.error
    assert ran.of("run.error")[0].data["status"] == "failed"


def test_a_json_string_answer_is_decoded_for_a_structured_schema(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(output_schema=SCHEMA)})
    ran = run_specs(folder, 'solver:\n  - {thought: t, final: \'{"answer": "yes"}\'}\n')
    assert ran.result.output == {"answer": "yes"}


@pytest.mark.parametrize(
    ("limits", "script", "limit"),
    [
        (
            "{max_iterations: 2}",
            "solver:\n"
            + "  - {thought: t, tool: word_count, input: {text: a}}\n" * 1
            + "  - {thought: t, tool: word_count, input: {text: b}}\n"
            + "  - {thought: t, final: x}\n",
            "max_iterations",
        ),
        (
            "{max_tokens: 1000}",
            "solver:\n  - {thought: t, tool: word_count, input: {text: a}, "
            "usage: {prompt_tokens: 900, completion_tokens: 200}}\n  - {thought: t, final: x}\n",
            "max_tokens",
        ),
        (
            "{max_cost_usd: 0.01}",
            "solver:\n  - {thought: t, tool: word_count, input: {text: a}, usage: {cost_usd: 0.02}}"
            "\n  - {thought: t, final: x}\n",
            "max_cost_usd",
        ),
        (
            "{timeout_s: 0.05}",
            "solver:\n  - {thought: slow, final: x, delay_ms: 2000}\n",
            "timeout_s",
        ),
    ],
)
def test_each_limit_ends_the_run_and_says_which(
    write_specs: WriteSpecs, limits: str, script: str, limit: str
) -> None:
    folder = write_specs(**{"a.yaml": agent(limits=limits)})
    ran = run_specs(folder, script)
    assert ran.result.status == "limit_exceeded"
    assert ran.result.limit == limit
    assert ran.result.error is not None and limit in ran.result.error
    (error,) = ran.of("run.error")
    assert error.data["limit"] == limit


def test_the_last_allowed_step_asks_for_a_final_answer(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(limits="{max_iterations: 2}")})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: t, tool: word_count, input: {text: a}}
          - {thought: last, final: done}
        """,
    )
    assert ran.result.status == "succeeded" and ran.result.output == "done"


def test_a_crew_budget_is_shared_by_its_tasks(write_specs: WriteSpecs) -> None:
    folder = write_specs(
        **{
            "a.yaml": agent(tools="[]"),
            "crew.yaml": """
                apiVersion: kiln/v1
                kind: Crew
                metadata: {name: pair}
                spec:
                  process: sequential
                  limits: {max_cost_usd: 0.03}
                  tasks:
                    - {name: one, agent: solver, prompt: first}
                    - {name: two, agent: solver, prompt: second}
                """,
        }
    )
    ran = run_specs(
        folder,
        """
        one: [{thought: t, final: a, usage: {cost_usd: 0.02}}]
        two: [{thought: t, final: b, usage: {cost_usd: 0.02}}]
        """,
        crew="pair",
    )
    assert ran.result.status == "limit_exceeded" and ran.result.limit == "max_cost_usd"
    assert ran.result.error is not None and "task 'two'" in ran.result.error


def test_a_script_turn_calling_a_tool_the_agent_lacks_is_refused_before_the_run(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[calculator]")})
    with pytest.raises(RunSetupError) as caught:
        run_specs(folder, "solver:\n  - {thought: t, tool: word_count, input: {text: a}}\n")
    message = str(caught.value)
    assert ".script.yaml:2:5:" in message
    assert "turn 1 of 'solver'" in message and "'word_count'" in message
    assert "it has calculator" in message


def test_running_out_of_turns_fails_the_run_naming_the_script(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    ran = run_specs(folder, "solver:\n  - {thought: t, tool: word_count, input: {text: a}}\n")
    assert ran.result.status == "failed"
    assert ran.result.error is not None
    assert (
        ".script.yaml: the script ran out of turns: 'solver' has 1 turn and the run asked "
        "for turn 2" in ran.result.error
    )
    assert "all models failed" not in ran.result.error  # #12 item 10: no model failed


APPROVAL = """\
apiVersion: kiln/v1
kind: Tool
metadata: {name: wire_money}
spec:
  description: Send money.
  input_schema: {type: object, properties: {amount: {type: number}}, required: [amount]}
  executor: {type: builtin, function: "stdlib_tools.word_count:run"}
  requires_approval: true
"""


def test_a_tool_that_requires_approval_ends_the_run_when_nobody_can_approve(
    write_specs: WriteSpecs,
) -> None:
    folder = write_specs(**{"a.yaml": agent(tools="[wire_money]"), "t.yaml": APPROVAL})
    ran = run_specs(
        folder,
        """
        solver:
          - {thought: pay, tool: wire_money, input: {amount: 5}}
          - {thought: not allowed, final: could not pay}
        """,
    )
    (result,) = ran.of("tool.result")
    assert result.data["status"] == "approval_required"
    assert "wire_money requires approval" in result.data["error"]
    # the agent does not guess on: the run fails, saying why and how to allow it
    assert ran.result.status == "failed"
    assert ran.result.error is not None and "--approve-all" in ran.result.error
    assert ran.types()[-2:] == ["run.error", "run.complete"]


def test_the_call_that_crosses_a_limit_is_still_reported(write_specs: WriteSpecs) -> None:
    folder = write_specs(**{"a.yaml": agent(limits="{max_tokens: 500}")})
    ran = run_specs(
        folder,
        "solver:\n  - {thought: big, final: x, "
        "usage: {prompt_tokens: 450, completion_tokens: 100}}\n",
    )
    assert ran.result.limit == "max_tokens"
    (thought,) = ran.of("agent.thought")
    assert thought.data["over_limit"] is True and thought.data["usage"]["prompt_tokens"] == 450


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ("{completion_tokens: abc}", "'usage.completion_tokens' is a whole number, 0 or more"),
        ("{prompt_tokens: -100}", "'usage.prompt_tokens' is a whole number, 0 or more"),
        ("{cost_usd: -5}", "'usage.cost_usd' is a number of dollars, 0 or more"),
    ],
)
def test_script_usage_values_are_checked(write_specs: WriteSpecs, usage: str, problem: str) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    with pytest.raises(Exception, match=problem.replace("(", r"\(")):
        run_specs(folder, f"solver:\n  - {{thought: t, final: x, usage: {usage}}}\n")


def test_an_interrupted_run_is_recorded_as_cancelled_with_what_it_spent(
    write_specs: WriteSpecs, tmp_path: Path
) -> None:
    folder = write_specs(**{"a.yaml": agent()})
    script = tmp_path / "slow.yaml"
    script.write_text(
        "solver:\n"
        "  - {thought: t, tool: word_count, input: {text: a}, usage: {prompt_tokens: 70}}\n"
        "  - {thought: slow, final: x, delay_ms: 5000}\n"
    )
    prepared = prepare([folder], agent="solver", model=f"scripted:{script}")
    events: list[Event] = []

    async def main() -> None:
        with anyio.move_on_after(0.3):
            await execute(prepared, sinks=[events.append], store=store, run_id="interrupted")

    with TraceStore(tmp_path / "runs.db") as store:
        anyio.run(main)
        row = store.get_run("interrupted")
    assert (row.status, row.error) == ("cancelled", "the run was interrupted")
    assert row.usage is not None and row.usage["prompt_tokens"] == 70
    assert [e.type for e in events[-2:]] == ["run.error", "run.complete"]
    assert events[-1].data["status"] == "cancelled"
