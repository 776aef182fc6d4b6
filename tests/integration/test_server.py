"""``kiln serve``'s API through the real application, started by uvicorn on a free port and
called with httpx: what is deployed, runs as JSON, as server-sent events and in the
background, their events replayed and followed, cancelled, resumed; approvals decided
over HTTP; keys, scopes, tenants, rate and size limits. The model is the scripted one."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.engine import tool
from runtime.server.app import Limits
from tests.helpers import EXAMPLES
from tests.server_kit import Served, serve

SCRIPT = """\
assistant:
  - thought: Count the words first.
    tool: word_count
    input: {text: "the quick brown fox"}
  - thought: 4 words.
    final: {answer: "4 words."}
payer:
  - {thought: Pay it., tool: pay, input: {cents: 500}}
  - {thought: Done., final: "paid"}
slow:
  - {thought: Waiting., final: "late", delay_ms: 3000}
writer:
  - {thought: Draft it., final: "a draft on tides"}
"""

SPECS = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: payer}
spec:
  instructions: Pay what you are asked to.
  tools: [pay]
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: slow}
spec: {instructions: Take your time.}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: writer}
spec: {instructions: Write.}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: desk}
spec:
  process: sequential
  inputs: {topic: {type: string}}
  tasks:
    - {name: draft, agent: writer, prompt: "Draft on {{ inputs.topic }}"}
"""

paid: list[int] = []


@tool(side_effects=True, requires_approval=True)
def pay(cents: int) -> str:
    """Pay an amount, in cents."""
    paid.append(cents)
    return f"paid {cents}"


def project(tmp_path: Path) -> tuple[Path, str]:
    """The quickstart and more.yaml's agents and crew; the scripted model's spec."""
    folder = tmp_path / "agents"
    if not folder.exists():
        shutil.copytree(EXAMPLES / "quickstart", folder)
        (folder / "more.yaml").write_text(SPECS, encoding="utf-8")
        (tmp_path / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    return folder, f"scripted:{tmp_path / 'script.yaml'}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    folder, model = project(tmp_path)
    paid.clear()
    with serve([folder], tmp_path, model=model, tools=[pay]) as server:
        yield server


def sse(response: httpx.Response) -> list[tuple[str, int, dict[str, Any]]]:
    """(event name, id, data) of each server-sent event."""
    found = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields["event"], int(fields["id"]), json.loads(fields["data"])))
    return found


def test_what_is_deployed_with_its_source_and_reach(served: Served) -> None:
    with served.client(served.key("acme", "read")) as http:
        agents = http.get("/v1/agents").json()
        names = [a["name"] for a in agents["items"]]
        assert names == ["assistant", "payer", "slow", "writer"]
        assistant = http.get("/v1/agents/assistant").json()
        assert assistant["source"]["path"].endswith("assistant.yaml")
        assert assistant["source"]["line"] >= 1 and assistant["hash"].startswith("sha256:")
        assert set(assistant["reach"]["tools"]) >= {"calculator", "word_count"}
        pay_tool = http.get("/v1/tools/pay").json()
        assert pay_tool["spec"]["executor"]["type"] == "inprocess"
        assert http.get("/v1/crews/desk").json()["spec"]["process"] == "sequential"
        missing = http.get("/v1/agents/nobody")
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]["message"]
        assert http.get("/v1/nothing/here").status_code == 404


def test_an_agent_runs_and_answers_json(served: Served) -> None:
    with served.client(served.key()) as http:
        ran = http.post(
            "/v1/agents/assistant/execute",
            json={"inputs": {"question": "How many words?"}, "context": {"user_id": "u1"}},
        )
        assert ran.status_code == 200, ran.text
        result = ran.json()
        assert result["status"] == "succeeded" and result["output"] == {"answer": "4 words."}
        run = http.get(f"/v1/runs/{result['run_id']}").json()
        assert run["status"] == "succeeded" and run["tenant"] == "acme"
        assert run["user"] == "acme/u1"  # the user's memory lives inside the tenant's
        listed = http.get("/v1/runs", params={"agent": "assistant"}).json()["items"]
        assert [r["id"] for r in listed] == [result["run_id"]]
        assert http.get("/v1/runs", params={"status": "failed"}).json()["items"] == []


def test_a_streamed_run_sends_the_events_as_server_sent_events(served: Served) -> None:
    with served.client(served.key()) as http:
        body = {"inputs": {"question": "?"}, "config": {"stream": True}}
        with http.stream("POST", "/v1/agents/assistant/execute", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            response.read()
        events = sse(response)
    names = [name for name, _, _ in events]
    assert names[0] == "agent.start" and names[-1] == "agent.complete"
    assert {"agent.thought", "agent.action", "tool.result", "agent.answer"} <= set(names)
    assert [i for _, i, _ in events] == list(range(1, len(events) + 1))  # none lost, in order
    assert events[-1][2]["data"]["status"] == "succeeded"


def test_a_background_run_is_followed_and_replayed_from_an_event_number(
    served: Served,
) -> None:
    with served.client(served.key()) as http:
        started = http.post(
            "/v1/agents/assistant/execute",
            json={"inputs": {"question": "?"}, "config": {"background": True}},
        )
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        assert started.headers["location"] == f"/v1/runs/{run_id}"
        followed = sse(http.get(f"/v1/runs/{run_id}/events"))  # live, to the end
        assert followed[-1][0] == "agent.complete"
        again = sse(http.get(f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "3"}))
        assert [i for _, i, _ in again] == [i for _, i, _ in followed][3:]
        assert [e[2] for e in again] == [e[2] for e in followed][3:]  # the store's = live


def test_a_crew_runs_under_both_names(served: Served) -> None:
    with served.client(served.key()) as http:
        ran = http.post("/v1/crews/desk/execute", json={"inputs": {"topic": "tides"}})
        assert ran.json()["output"] == "a draft on tides"
        alias = http.post("/v1/orchestration/tasks", json={"crew": "desk",
                                                           "inputs": {"topic": "tides"}})
        assert alias.json()["status"] == "succeeded"
        bad = http.post("/v1/crews/desk/execute", json={"inputs": {}})
        assert bad.status_code == 422 and "topic" in bad.json()["error"]["message"]


def test_a_run_is_cancelled(served: Served) -> None:
    with served.client(served.key()) as http:
        started = http.post(
            "/v1/agents/slow/execute", json={"input": "hi", "config": {"background": True}}
        )
        run_id = started.json()["run_id"]
        time.sleep(0.3)
        assert http.post(f"/v1/runs/{run_id}/cancel").status_code == 202
        deadline = time.monotonic() + 20
        while (status := http.get(f"/v1/runs/{run_id}").json()["status"]) == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status == "cancelled"
        again = http.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code == 409


def test_an_approval_is_decided_over_http_and_the_run_carries_on(served: Served) -> None:
    runner = served.key("acme", "run")
    approver = served.key("acme", "approve")
    with served.client(runner) as http:
        ran = http.post("/v1/agents/payer/execute", json={"input": "pay 5"}).json()
        assert ran["status"] == "waiting_approval" and paid == []
        (pending,) = http.get("/v1/approvals").json()["items"]
        assert pending["tool"] == "pay" and pending["input"] == {"cents": 500}
        refused = http.post(f"/v1/approvals/{pending['id']}", json={"decision": "approve"})
        assert refused.status_code == 403  # run, not approve
    with served.client(approver) as http:
        decided = http.post(f"/v1/approvals/{pending['id']}", json={"decision": "approve"})
        assert decided.status_code == 200 and decided.json()["run_resumed"] is True
        deadline = time.monotonic() + 20
        while http.get(f"/v1/runs/{ran['run_id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert paid == [500]
        twice = http.post(f"/v1/approvals/{pending['id']}", json={"decision": "deny",
                                                                   "reason": "no"})
        assert twice.status_code == 409


def test_keys_scopes_and_tenants(served: Served) -> None:
    acme = served.key("acme", "run")
    other = served.key("globex", "admin")
    rival = served.key("initech", "run")
    with served.client() as anonymous:
        for method, path in [("GET", "/v1/agents"), ("POST", "/v1/agents/slow/execute"),
                             ("GET", "/v1/runs"), ("GET", "/v1/approvals")]:  # fmt: skip
            answer = anonymous.request(method, path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        wrong = anonymous.get("/v1/agents", headers={"Authorization": "Bearer kiln_0_nope"})
        assert wrong.status_code == 401
    with served.client(acme) as http:
        run_id = http.post("/v1/agents/assistant/execute",
                           json={"inputs": {"question": "?"}}).json()["run_id"]  # fmt: skip
    with served.client(rival) as http:  # another tenant: it does not exist
        assert http.get(f"/v1/runs/{run_id}").status_code == 404
        assert http.get(f"/v1/runs/{run_id}/events").status_code == 404
        assert http.get("/v1/runs").json()["items"] == []
    with served.client(other) as http:  # an admin sees every tenant's
        assert http.get(f"/v1/runs/{run_id}").status_code == 200
    with served.client(served.key("acme", "read")) as http:
        assert http.post("/v1/agents/slow/execute", json={}).status_code == 403
    assert served.keys is not None
    served.keys.revoke(acme.split("_")[1])
    with served.client(acme) as http:
        assert http.get("/v1/agents").status_code == 401


def test_rate_limits_and_body_limits(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    shutil.copytree(EXAMPLES / "quickstart", folder)
    with serve([folder], tmp_path, limits=Limits(rate=1, burst=3, max_body=1000)) as served:
        with served.client(served.key("acme", "read")) as http:
            codes = [http.get("/v1/agents").status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
            limited = http.get("/v1/agents")
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        with served.client(served.key("acme", "run")) as http:
            big = http.post("/v1/agents/assistant/execute", content=b"{" + b" " * 2000 + b"}")
            assert big.status_code == 413
            bad = http.post("/v1/agents/assistant/execute", content=b"{nope")
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_json"


def test_no_route_answers_500_to_a_fuzzed_body(served: Served) -> None:
    """Bodies of every JSON shape at every route that takes one: never a 500."""
    import random

    rng = random.Random(7)
    shapes: list[Any] = [None, 1, "x", [], {}, {"input": 5}, {"inputs": []}, {"context": "u"},
                         {"config": {"stream": "yes", "x": 1}}, {"config": []},
                         {"inputs": {"question": {"deep": [1, 2]}}}, {"decision": 7},
                         {"crew": 3}, {"crew": "nope"}, {"force": "no"}, {"input": "\x00" * 50},
                         {"model": "assistant", "messages": "hi"}, {"files": {"../x.yaml": 1}},
                         {"model": "slow", "messages": [{"role": "user", "content": 3}]},
                         ]  # fmt: skip
    paths = ["/v1/agents/assistant/execute", "/v1/crews/desk/execute",
             "/v1/orchestration/tasks", "/v1/approvals/0000", "/v1/runs/0000/resume",
             "/v1/runs/0000/cancel", "/v1/chat/completions", "/v1/validate"]  # fmt: skip
    with served.client(served.key("acme", "admin")) as http:
        for path in paths:
            for body in [*shapes, *(rng.choice(shapes) for _ in range(5))]:
                answer = http.post(path, content=json.dumps(body))
                assert answer.status_code < 500, (path, body, answer.text)


def test_runs_started_by_many_clients_at_once(served: Served) -> None:
    key = served.key()
    results: list[dict[str, Any]] = []

    def one(i: int) -> None:
        with served.client(key) as http:
            body = {"inputs": {"question": f"q{i}"}, "context": {"user_id": f"u{i}"}}
            results.append(http.post("/v1/agents/assistant/execute", json=body).json())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 12 and {r["status"] for r in results} == {"succeeded"}
    assert len({r["run_id"] for r in results}) == 12


def test_kiln_keys_stores_only_a_hash(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "keys.db"
    made = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "keys", "create", "--tenant", "acme",
         "--scope", "run", "--keys-db", str(db)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = made.stdout.strip()
    assert key.startswith("kiln_") and key.encode() not in db.read_bytes()
    listed = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "keys", "list", "--keys-db", str(db), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (entry,) = json.loads(listed.stdout)
    assert entry["tenant"] == "acme" and entry["scopes"] == ["run"] and entry["revoked"] is None


def test_kiln_serve_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.server_kit import free_port

    kiln = [sys.executable, "-m", "runtime.cli", "serve"]
    folder = EXAMPLES / "quickstart"
    wide = subprocess.run([*kiln, str(folder), "--no-auth", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert wide.returncode == 2 and "loopback" in wide.stderr
    port = free_port()
    process = subprocess.Popen(
        [*kiln, str(folder), "--no-auth", "--port", str(port), "--db", str(tmp_path / "r.db"),
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "kiln serve did not get ready"
            time.sleep(0.1)
        agents = httpx.get(f"http://127.0.0.1:{port}/v1/agents").json()
        assert [a["name"] for a in agents["items"]] == ["assistant"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    # drained, then uvicorn re-raises the signal: killed by SIGTERM, as a process should be
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "WARNING: serving without keys" in err
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in logged]
    assert "Application shutdown complete." in messages, err
    assert any(entry["logger"] == "kiln.deploy" for entry in logged), err
    assert {"ts", "level", "logger", "message"} <= set(logged[0])


def test_an_openai_client_talks_to_an_agent(served: Served) -> None:
    """The real ``openai`` SDK, pointed at the server: models, a completion, a stream."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.url}/v1", api_key=served.key("acme", "run"))
    models = [m.id for m in client.models.list()]
    assert models == ["assistant", "payer", "slow", "writer"]
    completion = client.chat.completions.create(
        model="writer", messages=[{"role": "user", "content": "Write about tides."}]
    )
    assert completion.choices[0].message.content == "a draft on tides"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    stream = client.chat.completions.create(
        model="writer",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "Write about tides."}]},
        ],
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "a draft on tides"
    from openai import NotFoundError

    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])


def test_validate_a_bundle_of_spec_files(served: Served) -> None:
    bad = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: a}\nspec: {tools: [nope]}\n"
    good = "apiVersion: kiln/v1\nkind: Agent\nmetadata: {name: b}\nspec: {instructions: Hi.}\n"
    with served.client(served.key("ci", "read")) as http:
        answer = http.post("/v1/validate", json={"files": {"agents/a.yaml": bad}}).json()
        assert answer["ok"] is False
        (found,) = [d for d in answer["diagnostics"] if d["severity"] == "error"]
        assert (found["path"], found["line"]) == ("agents/a.yaml", 4)
        assert "nope" in found["message"]
        fine = http.post("/v1/validate", json={"files": {"b.yaml": good}}).json()
        assert fine["ok"] is True and fine["plan_hash"].startswith("sha256:")
        escape = http.post("/v1/validate", json={"files": {"../../etc/x.yaml": good}})
        assert escape.status_code == 422
        reader = ("apiVersion: kiln/v1\nkind: Tool\nmetadata: {name: t}\nspec:\n"
                  "  description: x\n  executor: {type: openapi, document: /etc/passwd}\n")
        peek = http.post("/v1/validate", json={"files": {"t.yaml": reader}}).json()
        assert peek["ok"] is False and "root:" not in json.dumps(peek)
        assert any("outside the folder" in d["message"] for d in peek["diagnostics"])


MEMORY = """\
apiVersion: kiln/v1
kind: MemoryPolicy
metadata: {name: notes}
spec:
  short_term: {backend: sqlite}
  vector: {backend: chroma, embedder: hashing/384}
  remember: [final_answers]
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: scribe}
spec:
  instructions: You keep notes.
  memory: notes
"""


def test_memory_is_queried_and_forgotten_per_tenant_and_user(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "scribe.yaml").write_text(MEMORY, encoding="utf-8")
    script = tmp_path / "script.yaml"
    script.write_text("scribe:\n  - {thought: noted, final: noted}\n", encoding="utf-8")
    with serve([folder], tmp_path, model=f"scripted:{script}") as served:
        acme, globex = served.key("acme", "run"), served.key("globex", "run")
        said = {"input": "my locker is number 42", "context": {"user_id": "dan"}}
        ask = {"query": "which locker?", "context": {"user_id": "dan"}}
        with served.client(acme) as http:
            assert http.post("/v1/agents/scribe/execute", json=said).json()["status"] == (
                "succeeded"
            )
            found = http.post("/v1/agents/scribe/memory/query", json=ask).json()
            texts = [i["text"] for i in found["items"] if i["store"] == "vector"]
            assert any("locker is number 42" in t for t in texts), found
            item = next(i for i in found["items"] if i["store"] == "vector")
            assert {"score", "why", "relevance", "recency", "importance"} <= set(item)
            other_user = {**ask, "context": {"user_id": "eve"}}
            assert http.post("/v1/agents/scribe/memory/query", json=other_user).json()[
                "items"
            ] == []
        with served.client(globex) as http:  # the same user name in another tenant
            theirs = http.post("/v1/agents/scribe/memory/query", json=ask).json()
            assert theirs["items"] == [] and theirs["turns"] == []
            forgot = http.delete("/v1/agents/scribe/memory", params={"user_id": "dan"}).json()
            assert forgot["forgotten"]["vector"] == 0
        with served.client(acme) as http:
            gone = http.delete("/v1/agents/scribe/memory", params={"user_id": "dan"}).json()
            assert gone["forgotten"]["vector"] >= 1
            after = http.post("/v1/agents/scribe/memory/query", json=ask).json()
            assert [i for i in after["items"] if i["store"] == "vector"] == []
            none = http.post("/v1/agents/nobody/memory/query", json=ask)
            assert none.status_code == 404


def test_metrics_count_runs_steps_tokens_and_requests(served: Served) -> None:
    with served.client(served.key()) as http:
        http.post("/v1/agents/assistant/execute", json={"inputs": {"question": "?"}})
        text = http.get("/metrics").text
    lines = set(text.splitlines())
    assert 'kiln_runs_total{status="succeeded"} 1' in lines
    assert 'kiln_tool_calls_total{status="ok",tool="word_count"} 1' in lines
    assert any(line.startswith('kiln_model_tokens_total{kind="prompt"') for line in lines)
    assert 'kiln_step_seconds_count{kind="model"} 2' in lines
    assert 'kiln_step_seconds_bucket{kind="tool",le="+Inf"} 1' in lines
    assert "kiln_runs_in_flight 0" in lines
    assert any(
        line.startswith('kiln_http_requests_total{code="200",route="/v1/agents/{name}/execute"}')
        for line in lines
    )


def test_runs_in_flight_when_a_server_stops_are_carried_on_by_the_next(tmp_path: Path) -> None:
    folder, model = project(tmp_path)
    with serve([folder], tmp_path, model=model, tools=[pay]) as first:
        key = first.key("acme", "run")
        with first.client(key) as http:
            started = http.post(
                "/v1/agents/slow/execute", json={"input": "hi", "config": {"background": True}}
            ).json()
            time.sleep(0.3)
    # the first server drained: the run is recorded cancelled, and the next one resumes it
    with serve([folder], tmp_path, model=model, tools=[pay]) as second:
        with second.client(key) as http:
            deadline = time.monotonic() + 30
            while (run := http.get(f"/v1/runs/{started['run_id']}").json())["status"] != (
                "succeeded"
            ):
                assert run["status"] in ("cancelled", "running"), run
                assert time.monotonic() < deadline, run
                time.sleep(0.05)
            assert run["output"] == "late" and run["tenant"] == "acme"


def test_the_openapi_document_lists_every_route_and_the_docs_name_them(served: Served) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert "post" in paths["/v1/agents/{name}/execute"]
    assert paths["/v1/agents/{name}/execute"]["post"]["parameters"][0]["name"] == "name"
    assert paths["/healthz"]["get"]["security"] == []
    assert "delete" in paths["/v1/agents/{name}/memory"]
    reference = (Path(__file__).parents[2] / "docs" / "server.md").read_text(encoding="utf-8")
    missing = [p for p in paths if p.startswith("/v1") and f"{p}" not in reference]
    assert missing == [], f"docs/server.md does not describe {missing}"
