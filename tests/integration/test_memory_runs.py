"""Memory in real runs: the scripted model drives agents whose policies keep short-term
turns in process, facts in a real ChromaDB folder, entities in a networkx graph on SQLite
and episodes in the trace store. What was remembered, recalled, injected, kept apart and
forgotten is read from the events and from the model's own requests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime.events import Event
from runtime.executor import RunResult
from runtime.llm.gateway import Gateway, default_backend
from runtime.llm.types import ModelBackend, ModelRequest, ModelResponse
from runtime.memory.service import Who
from runtime.run import Prepared, execute, prepare
from runtime.trace import TraceStore
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture
from tests.runtime_kit import FAST

REPO = Path(__file__).resolve().parents[2]
CHAT = REPO / "examples" / "memory-chat"
CHAT_SCRIPT = REPO / "examples" / "scripted" / "memory-chat.yaml"


class Recording:
    """A backend that passes every call on and keeps the requests: what the model saw."""

    def __init__(self, inner: ModelBackend, seen: list[ModelRequest]) -> None:
        self.inner = inner
        self.seen = seen
        self.name = inner.name
        self.provider = inner.provider
        self.native_tools = inner.native_tools
        self.constrained = inner.constrained
        self.context_window = inner.context_window

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.seen.append(request)
        return await self.inner.complete(request)

    def forget(self, run_id: str) -> None:
        getattr(self.inner, "forget", lambda _: None)(run_id)


class Chat:
    """One prepared program, run again and again like a long-lived process would."""

    def __init__(
        self,
        folder: Path,
        script: Path,
        tmp: Path,
        *,
        agent: str | None = None,
        crew: str | None = None,
        trace: bool = True,
    ) -> None:
        self.seen: list[ModelRequest] = []
        gateway = Gateway(
            retry=FAST, factory=lambda model: Recording(default_backend(model), self.seen)
        )
        self.db = tmp / "runs.db"
        self.trace = trace
        self.folder, self.agent, self.crew = folder, agent, crew
        self.model = f"scripted:{script}"
        self.gateway = gateway
        self.memory = tmp / "memory"
        self.prepared = self._prepare("hello")

    def _prepare(self, text: str) -> Prepared:
        return prepare(
            [self.folder],
            agent=self.agent,
            crew=self.crew,
            text=text if self.crew is None else None,
            inputs={} if self.crew is None else {"topic": text},
            model=self.model,
            gateway=self.gateway,
            memory_dir=self.memory,
            runs_db=self.db if self.trace else None,
        )

    def say(self, text: str, *, user: str = "alice", session: str | None = None) -> Ran:
        if self.crew is None:
            prepared = replace(self.prepared, text=text)
        else:
            prepared = replace(self.prepared, inputs={"topic": text})
        events: list[Event] = []
        store = TraceStore(self.db) if self.trace else None
        try:
            result = anyio.run(
                lambda: execute(
                    prepared,
                    sinks=[events.append],
                    store=store,
                    who=Who(tenant=user, session=session),
                )
            )
        finally:
            if store is not None:
                store.close()
        return Ran(result, events)

    def system_prompts(self) -> list[str]:
        return [str(r.messages[0]["content"]) for r in self.seen if r.purpose in ("act", "final")]


class Ran:
    def __init__(self, result: RunResult, events: list[Event]) -> None:
        self.result = result
        self.events = events

    def one(self, type: str) -> Mapping[str, Any]:
        found = [e.data for e in self.events if e.type == type]
        assert len(found) == 1, [e.type for e in self.events]
        return found[0]

    def read(self) -> Mapping[str, Any]:
        return self.one("memory.read")

    def recalled(self, store: str = "vector") -> list[str]:
        return [str(i["text"]) for i in self.read()["items"] if i["store"] == store]


@pytest.fixture
def chat(tmp_path: Path) -> Chat:
    return Chat(CHAT, CHAT_SCRIPT, tmp_path)


def test_a_fact_a_user_told_once_is_recalled_and_injected_in_a_later_run(chat: Chat) -> None:
    first = chat.say("I live in Lisbon and my dog is called Rex.", session="monday")
    assert first.result.ok, first.result.error
    assert first.read()["reason"] is not None  # nothing to recall yet, and it says why
    assert "empty" in first.read()["reason"]
    written = first.one("memory.write")
    facts = [i["text"] for i in written["items"] if i["store"] == "vector" and i["kind"] == "fact"]
    assert any("Rex" in f for f in facts), written
    second = chat.say("What is my dog called?", session="tuesday")
    assert second.result.ok
    recalled = second.recalled()
    assert any("Rex" in text for text in recalled), second.read()
    best = next(i for i in second.read()["items"] if i["store"] == "vector")
    assert {"score", "relevance", "recency", "importance", "why"} <= set(best)
    # the recalled fact reached the model, in the system prompt (inject.position: system)
    assert "Rex" in chat.system_prompts()[-1]


def test_one_user_never_reads_another_users_memory(chat: Chat) -> None:
    assert chat.say("My dog is called Rex and I live in Lisbon.", user="alice").result.ok
    bob = chat.say("What is my dog called? Where do I live?", user="bob")
    assert bob.result.ok
    read = bob.read()
    assert read["items"] == [] and read["turns"] == 0
    assert "alice" not in json.dumps(read) and "Rex" not in json.dumps(read)
    assert "Rex" not in chat.system_prompts()[-1]
    assert read["reason"] is not None and "empty" in read["reason"]
    # and alice still has hers
    assert any("Rex" in t for t in chat.say("my dog?", user="alice").recalled())


def test_short_term_turns_carry_over_within_a_session_only(chat: Chat) -> None:
    chat.say("I am planning a trip to Kyoto.", session="s1")
    again = chat.say("Which city did I mention?", session="s1")
    assert again.read()["turns"] == 2
    request = [r for r in chat.seen if r.purpose in ("act", "final")][-1]
    contents = [str(m.get("content")) for m in request.messages]
    assert "I am planning a trip to Kyoto." in contents  # the earlier turn, as a message
    other = chat.say("Which city did I mention?", session="s2")
    assert other.read()["turns"] == 0


def test_the_graph_remembers_entities_and_recalls_relations_around_them(chat: Chat) -> None:
    chat.say("My sister Ana works at Siemens. Ana lives in Porto.")
    later = chat.say("Where does Ana live?")
    relations = later.recalled("graph")
    assert any("Porto" in r for r in relations), later.read()["stores"]
    assert "ana" in [n.lower() for n in later.read()["stores"]["graph"]["entities"]]


def test_episodic_memory_recalls_earlier_runs_of_the_agent(chat: Chat) -> None:
    chat.say("Book a table for two at the harbour restaurant on Friday.")
    later = chat.say("Did I book a restaurant table?")
    episodes = later.recalled("episodic")
    assert any("harbour restaurant" in e for e in episodes), later.read()["stores"]


def test_concurrent_runs_writing_one_scope_lose_nothing(chat: Chat) -> None:
    async def many() -> list[RunResult]:
        results: list[RunResult] = []

        async def one(i: int) -> None:
            results.append(
                await execute(
                    chat.prepared, who=Who(tenant="alice", session=f"s{i}")
                )
            )

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
        return results

    results = anyio.run(many)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    listing = _kiln("memory", "list", str(CHAT), "--agent", "concierge", "--json",
                    "--memory-dir", str(chat.memory), "--runs-db", str(chat.db))  # fmt: skip
    spaces = json.loads(listing.stdout)["personal"]
    vector = sum(counts.get("vector", 0) for counts in spaces.values())
    assert vector == 20  # one answer per run ("hello" states no fact)


def test_kiln_memory_query_explains_and_forget_forgets(chat: Chat) -> None:
    chat.say("My favourite colour is green.", user="carol")
    where = ["--memory-dir", str(chat.memory), "--runs-db", str(chat.db)]
    query = _kiln("memory", "query", "favourite colour", str(CHAT), "--agent", "concierge",
                  "--user", "carol", *where)  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert "My favourite colour is green" in query.stdout
    assert "relevance" in query.stdout and "recency" in query.stdout
    forget = _kiln("memory", "forget", str(CHAT), "--agent", "concierge", "--user", "carol",
                   "--all", *where)  # fmt: skip
    assert forget.returncode == 0 and "forgot" in forget.stdout
    after = _kiln("memory", "query", "favourite colour", str(CHAT), "--agent", "concierge",
                  "--user", "carol", "--json", *where)  # fmt: skip
    data = json.loads(after.stdout)
    assert [i for i in data["items"] if i["store"] == "vector"] == []
    assert "empty store" in data["stores"]["vector"]["reason"]


def test_forget_all_empties_every_window_and_past_run_of_the_namespace(chat: Chat) -> None:
    chat.say("My locker code is 1234.", user="erin", session="monday")
    chat.say("My bike is green.", user="erin")
    where = ["--memory-dir", str(chat.memory), "--runs-db", str(chat.db)]
    who = [str(CHAT), "--agent", "concierge", "--user", "erin", *where]
    listed = json.loads(_kiln("memory", "list", *who, "--json").stdout)["personal"]
    assert any("#" in key for key in listed)  # monday's window, beside the namespace's own
    gone = json.loads(_kiln("memory", "forget", *who, "--all", "--json").stdout)["forgotten"]
    assert gone["short_term"] == 4 and gone["episodic"] == 2 and gone["vector"] >= 2
    assert json.loads(_kiln("memory", "list", *who, "--json").stdout)["personal"] == {}
    after = json.loads(_kiln("memory", "query", "locker code", *who, "--json").stdout)
    assert after["items"] == [] and after["turns"] == []


def test_forget_with_a_session_forgets_only_that_conversation(chat: Chat) -> None:
    chat.say("Let us plan the trip.", user="fay", session="trip")
    chat.say("Let us plan the party.", user="fay", session="party")
    where = ["--memory-dir", str(chat.memory), "--runs-db", str(chat.db)]
    who = [str(CHAT), "--agent", "concierge", "--user", "fay", *where]
    gone = _kiln("memory", "forget", *who, "--session", "trip", "--all", "--json")
    assert json.loads(gone.stdout)["forgotten"] == {"short_term": 2}
    query = ["memory", "query", "plan", *who, "--json", "--session"]
    party = json.loads(_kiln(*query, "party").stdout)
    assert len(party["turns"]) == 2
    trip = json.loads(_kiln(*query, "trip").stdout)
    assert trip["turns"] == []
    assert any("trip" in i["text"] for i in trip["items"] if i["store"] == "vector")


def test_memory_list_shows_one_users_namespaces_with_user(chat: Chat) -> None:
    chat.say("hello", user="gus")
    chat.say("hello", user="hal")
    where = ["--memory-dir", str(chat.memory), "--runs-db", str(chat.db)]
    listed = _kiln("memory", "list", str(CHAT), "--agent", "concierge", "--user", "gus",
                   "--json", *where)  # fmt: skip
    keys = list(json.loads(listed.stdout)["personal"])
    assert keys and all("/gus/" in key for key in keys)


def test_blank_user_or_session_ids_are_usage_errors(chat: Chat) -> None:
    blank = _kiln("run", str(CHAT), "--user", " ", "--input", "hi", "--no-trace",
                  "--model", f"scripted:{CHAT_SCRIPT}")  # fmt: skip
    assert blank.returncode == 2 and "--user needs an id" in blank.stderr
    query = _kiln("memory", "query", "x", str(CHAT), "--agent", "concierge", "--session", "")
    assert query.returncode == 2 and "--session needs an id" in query.stderr


def test_kiln_memory_refuses_unknown_agents_and_agents_without_memory(tmp_path: Path) -> None:
    unknown = _kiln("memory", "query", "x", str(CHAT), "--agent", "nobody")
    assert unknown.returncode == 2 and "no agent named 'nobody'" in unknown.stderr
    bare = _write(tmp_path, """
        apiVersion: kiln/v1
        kind: Agent
        metadata: {name: plain}
        spec: {instructions: Hi.}
    """)  # fmt: skip
    none = _kiln("memory", "query", "x", str(bare), "--agent", "plain")
    assert none.returncode == 2 and "has no memory policy" in none.stderr


POLICY = """
apiVersion: kiln/v1
kind: MemoryPolicy
metadata: {{name: notes}}
spec:
{body}
---
apiVersion: kiln/v1
kind: Agent
metadata: {{name: scribe}}
spec:
  instructions: You keep notes.
  memory: notes
"""

SCRIBE = """
scribe:
  - thought: noted
    final: noted
"""


def _policy(tmp_path: Path, body: str) -> tuple[Path, Path]:
    folder = _write(tmp_path, POLICY.format(body=textwrap.indent(textwrap.dedent(body), "  ")))
    script = tmp_path / "scribe.script.yaml"
    script.write_text(SCRIBE, encoding="utf-8")
    return folder, script


def test_a_store_that_cannot_be_reached_fails_the_task_and_says_which(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, """
        short_term: {backend: redis, url: "redis://127.0.0.1:1/0"}
    """)  # fmt: skip
    ran = Chat(folder, script, tmp_path, trace=False).say("remember this")
    assert ran.result.status == "failed"
    assert "memory policy 'notes' could not read" in str(ran.result.error)
    assert "127.0.0.1:1" in str(ran.result.error)
    read = ran.read()
    assert read["code"] == "memory_unavailable" and read["retryable"] is True


def test_a_collection_made_with_another_embedder_is_refused(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, "vector: {backend: chroma, embedder: hashing/384}\n")
    chat = Chat(folder, script, tmp_path, trace=False)
    assert chat.say("the first note").result.ok
    other, _ = _policy(tmp_path / "v2", "vector: {backend: chroma, embedder: hashing/128}\n")
    changed = Chat(other, script, tmp_path, trace=False)  # the same memory folder
    ran = changed.say("the first note")
    assert ran.result.status == "failed"
    assert ran.read()["code"] == "embedder_mismatch"
    assert "hashing-v1-384" in str(ran.result.error) and "hashing-v1-128" in str(ran.result.error)


def test_the_window_is_summarised_when_it_outgrows_the_policy(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, """
        short_term: {backend: inprocess, max_messages: 4, summarize: true}
    """)  # fmt: skip
    chat = Chat(folder, script, tmp_path, trace=False)
    for i in range(3):
        last = chat.say(f"note number {i}", session="s")
    assert "summar" in json.dumps(last.one("memory.write")["notes"]).lower()
    read = chat.say("and now?", session="s").read()
    assert read["turns"] <= 4
    request = [r for r in chat.seen if r.purpose in ("act", "final")][-1]
    assert "Summary of our earlier conversation" in str(request.messages[1]["content"])
    assert any(r.purpose == "summarize" for r in chat.seen)


def test_a_conversation_on_redis_outlives_the_process_that_had_it(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    folder, script = _policy(tmp_path, f"""
        short_term: {{backend: redis, url: "{redis_server.url}", max_messages: 10}}
    """)  # fmt: skip
    first = Chat(folder, script, tmp_path, trace=False)
    first.say("my locker is number 42", session="gym")
    # another program (a new process, another machine) on the same server and session
    second = Chat(folder, script, tmp_path / "elsewhere", trace=False)
    read = second.say("which locker is mine?", session="gym").read()
    assert read["turns"] == 2
    request = [r for r in second.seen if r.purpose in ("act", "final")][-1]
    assert "my locker is number 42" in [m.get("content") for m in request.messages]
    assert second.say("which locker?", session="pool").read()["turns"] == 0


def test_kiln_memory_forget_by_id_and_by_age(chat: Chat) -> None:
    chat.say("My bike is blue.", user="dan")
    chat.say("My car is red.", user="dan")
    where = ["--memory-dir", str(chat.memory), "--runs-db", str(chat.db)]
    who = [str(CHAT), "--agent", "concierge", "--user", "dan", *where]
    found = json.loads(_kiln("memory", "query", "bike", *who, "--json").stdout)
    bike = next(i for i in found["items"] if i["store"] == "vector" and "bike" in i["text"])
    gone = _kiln("memory", "forget", *who, "--id", bike["id"], "--json")
    assert json.loads(gone.stdout)["forgotten"]["vector"] == 1
    after = json.loads(_kiln("memory", "query", "bike", *who, "--json").stdout)
    assert bike["id"] not in [i.get("id") for i in after["items"]]
    everything = _kiln("memory", "forget", *who, "--before", "2999-01-01", "--json")
    assert json.loads(everything.stdout)["forgotten"]["vector"] >= 2  # the car's memories
    bad = _kiln("memory", "forget", *who, "--before", "last tuesday")
    assert bad.returncode == 2 and "not an ISO 8601 date" in bad.stderr


def test_a_session_scope_without_a_session_says_so(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, "scope: session\n")
    chat = Chat(folder, script, tmp_path, trace=False)
    chat.say("first")
    read = chat.say("second").read()
    assert read["turns"] == 0
    assert "no session named" in str(read["reason"])


def test_ttl_forgets_relations_and_past_runs_too(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, """
        ttl_s: 1
        short_term: null
        vector: {backend: chroma}
        graph: {backend: networkx}
        episodic: {top_k: 3}
        remember: [final_answers, user_facts]
    """)  # fmt: skip
    chat = Chat(folder, script, tmp_path)
    chat.say("My sister is called Mia. Mia lives in Oslo.")
    fresh = chat.say("Where does Mia live?").read()
    assert fresh["stores"]["graph"]["found"] >= 1 and fresh["stores"]["episodic"]["found"] >= 1
    time.sleep(1.2)
    stale = chat.say("Where does Mia live?").read()
    assert stale["items"] == [], stale["items"]


def test_an_inject_template_that_fails_names_the_policy(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, """
        short_term: null
        vector: {backend: chroma}
        inject: {template: "{{ memories[0].text }}"}
    """)  # fmt: skip
    ran = Chat(folder, script, tmp_path, trace=False).say("anything")
    assert ran.result.status == "failed"
    assert "memory policy 'notes' could not read" in str(ran.result.error)
    assert "inject.template" in str(ran.result.error)


def test_expired_memories_are_never_recalled_and_the_reason_says_so(tmp_path: Path) -> None:
    folder, script = _policy(tmp_path, """
        ttl_s: 1
        short_term: null
        vector: {backend: chroma}
    """)  # fmt: skip
    chat = Chat(folder, script, tmp_path, trace=False)
    chat.say("the door code is 4711")
    time.sleep(1.2)  # the TTL is in whole seconds
    read = chat.say("what is the door code?").read()
    assert read["items"] == []
    assert "expired" in str(read["reason"])


CREW = """
apiVersion: kiln/v1
kind: MemoryPolicy
metadata: {name: desk}
spec:
  short_term: null
  vector: {backend: chroma}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: reporter}
spec: {instructions: Report.}
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: editor}
spec: {instructions: Edit.}
---
apiVersion: kiln/v1
kind: Crew
metadata: {name: newsroom}
spec:
  process: sequential
  memory: desk
  shared_memory: true
  inputs: {topic: {type: string}}
  tasks:
    - {name: report, agent: reporter, prompt: "Report on {{ inputs.topic }}."}
    - {name: edit, agent: editor, prompt: "Edit the report on {{ inputs.topic }}."}
"""

CREW_SCRIPT = """
report:
  - thought: done
    final: The harbour flooded on Tuesday.
edit:
  - thought: done
    final: Edited.
"""


def test_a_crew_with_shared_memory_reads_what_any_member_wrote(tmp_path: Path) -> None:
    folder = _write(tmp_path, CREW)
    script = tmp_path / "crew.script.yaml"
    script.write_text(CREW_SCRIPT, encoding="utf-8")
    chat = Chat(folder, script, tmp_path, crew="newsroom", trace=False)
    first = chat.say("floods")
    assert first.result.ok, first.result.error
    reads = [e for e in first.events if e.type == "memory.read"]
    writes = [e for e in first.events if e.type == "memory.write"]
    assert {e.agent for e in writes} == {"reporter", "editor"}
    assert {e.data["namespace"] for e in reads + writes} == {"desk/alice/crew:newsroom"}
    # within the same run, the editor already recalls what the reporter wrote
    edit_read = next(e for e in reads if e.task == "edit")
    items = edit_read.data["items"]
    assert any("harbour flooded" in i["text"] and i["agent"] == "reporter" for i in items)


MANAGED = CREW.replace("process: sequential", "process: hierarchical\n  manager: chief") + """
---
apiVersion: kiln/v1
kind: Agent
metadata: {name: chief}
spec: {instructions: Run the newsroom.}
"""

MANAGED_SCRIPT = CREW_SCRIPT + """
chief:
  - thought: the report first
    tool: task_report
    input: {}
  - thought: then the edit
    tool: task_edit
    input: {}
  - thought: done
    final: Published.
"""


def test_tasks_a_manager_hands_out_share_the_crews_memory(tmp_path: Path) -> None:
    folder = _write(tmp_path, MANAGED)
    script = tmp_path / "crew.script.yaml"
    script.write_text(MANAGED_SCRIPT, encoding="utf-8")
    chat = Chat(folder, script, tmp_path, crew="newsroom", trace=False)
    ran = chat.say("floods")
    assert ran.result.ok, ran.result.error
    edit = next(e for e in ran.events if e.type == "memory.read" and e.task == "edit")
    assert any("harbour flooded" in i["text"] for i in edit.data["items"])
    assert {e.agent for e in ran.events if e.type == "memory.write"} == {"reporter", "editor"}


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "specs.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


def _kiln(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env=env,
    )



def test_a_memory_write_cut_off_by_a_crash_is_made_once_when_the_run_resumes(
    tmp_path: Path,
) -> None:
    """A durable run journals its memory write as a step: resumed after the write was
    started but not recorded, the write is made again and the stores hold it once (the
    window's turns once, the vector records under the same ids); resumed after it was
    recorded, nothing is written and the same ``memory.write`` event is told again."""
    import sqlite3

    from runtime.run import Resume

    folder, script = _policy(tmp_path, """
        short_term: {backend: sqlite, max_messages: 20}
        vector: {backend: chroma, embedder: hashing/384}
        remember: [final_answers]
    """)  # fmt: skip
    chat = Chat(folder, script, tmp_path)
    who = Who(tenant="alice", session="s")

    def run(resume: Resume | None) -> Ran:
        events: list[Event] = []
        with TraceStore(chat.db) as store:
            result = anyio.run(
                lambda: execute(
                    replace(chat.prepared, text="the gate code is 1234"),
                    sinks=[events.append],
                    store=store,
                    who=who,
                    run_id="the-run",
                    resume=resume,
                )
            )
        return Ran(result, events)

    def crashed(state: str) -> None:
        with sqlite3.connect(chat.db) as conn:
            (step,) = conn.execute(
                "SELECT step FROM journal WHERE run_id = 'the-run' AND kind = 'memory'"
            ).fetchone()
            assert step == "/-:scribe#w"
            if state == "started":
                conn.execute("UPDATE journal SET state = 'started', data = '{}' WHERE step = ?",
                             (step,))  # fmt: skip
            conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = 'the-run'")

    first = run(None)
    written = first.one("memory.write")
    ids = sorted(i["id"] for i in written["items"] if i["store"] == "vector")
    assert len(ids) == 1
    crashed("started")  # the process died inside the write
    again = run(Resume())
    assert again.result.ok
    assert sorted(i["id"] for i in again.one("memory.write")["items"] if "id" in i) == ids
    crashed("done")  # the process died after the write was recorded
    replayed = run(Resume())
    assert replayed.one("memory.write")["items"] == again.one("memory.write")["items"]
    # what the stores hold: the exchange once, in the window and in the vector store
    later = chat.say("what is the gate code?", user="alice", session="s")
    assert later.read()["turns"] == 2
    recalled = later.recalled()
    assert recalled.count("Asked: the gate code is 1234\nAnswered: noted") == 1, recalled
