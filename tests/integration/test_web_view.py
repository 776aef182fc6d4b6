"""The web view in a real headless browser (Debian's Chromium over the DevTools protocol)
against the real server: signing in, the pages loading, a live run streaming into its
timeline, and an approval clicked through. Screenshots are saved beside the test's files
(their paths are printed)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.engine import tool
from tests.browser import Browser, browser
from tests.helpers import EXAMPLES
from tests.server_kit import Served, serve

SCRIPT = """\
assistant:
  - thought: Count the words first.
    tool: word_count
    input: {text: "the quick brown fox"}
    delay_ms: 700
  - thought: 4 words.
    final: {answer: "4 words."}
    delay_ms: 700
payer:
  - {thought: Pay it., tool: pay, input: {cents: 700}}
  - {thought: Done., final: "paid"}
"""

PAYER = """\
apiVersion: kiln/v1
kind: Agent
metadata: {name: payer}
spec:
  instructions: Pay what you are asked to.
  tools: [pay]
"""

paid: list[int] = []


@tool(side_effects=True, requires_approval=True)
def pay(cents: int) -> str:
    """Pay an amount, in cents."""
    paid.append(cents)
    return f"paid {cents}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    folder = tmp_path / "agents"
    shutil.copytree(EXAMPLES / "quickstart", folder)
    (folder / "payer.yaml").write_text(PAYER, encoding="utf-8")
    script = tmp_path / "script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    paid.clear()
    with serve([folder], tmp_path, model=f"scripted:{script}", tools=[pay]) as server:
        yield server


def signed_in(page: Browser, served: Served, key: str) -> None:
    page.open(f"{served.url}/ui/runs")  # no key yet: sent to sign in
    page.wait("location.pathname === '/ui/login'")
    page.eval(f"document.querySelector('input[name=key]').value = {key!r}")
    page.eval("document.forms[0].submit()")
    page.wait("location.pathname === '/' && document.readyState === 'complete'")


@pytest.mark.timeout(300)  # starts Chromium (and installs it on a machine without it)
def test_the_pages_a_live_run_and_an_approval(served: Served, tmp_path: Path) -> None:
    key = served.key("acme", "admin")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with browser() as page:
        signed_in(page, served, key)
        assert "serving" in page.eval("document.body.innerText")
        page.screenshot(shots / "deployments.png")
        page.open(f"{served.url}/ui/agents")
        text = page.eval("document.body.innerText")
        assert "assistant" in text and "payer" in text and "flowchart TD" in text

        # a run started elsewhere streams into its timeline as it happens
        with served.client(key) as http:
            started = http.post(
                "/v1/agents/assistant/execute",
                json={"inputs": {"question": "?"}, "config": {"background": True}},
            ).json()
        page.open(f"{served.url}/ui/runs/{started['run_id']}")
        page.wait("document.querySelectorAll('#timeline li').length >= 1")
        early = page.eval("document.querySelectorAll('#timeline li').length")
        assert page.eval("document.getElementById('status').textContent") == "running"
        page.wait("document.getElementById('status').textContent === 'succeeded'", 30)
        lines = page.eval("[...document.querySelectorAll('#timeline li')].map(l => l.innerText)")
        assert early < len(lines)  # it grew while we watched
        assert any("calls word_count" in line for line in lines), lines
        assert any("answers" in line and "4 words." in line for line in lines), lines
        print("screenshot:", page.screenshot(shots / "run.png"))

        # an approval, clicked through
        with served.client(key) as http:
            waiting = http.post("/v1/agents/payer/execute", json={"input": "pay"}).json()
        assert waiting["status"] == "waiting_approval" and paid == []
        page.open(f"{served.url}/ui/approvals")
        assert "pay" in page.eval("document.getElementById('approvals').innerText")
        page.screenshot(shots / "approvals.png")
        page.eval("document.querySelector('button.approve').click()")
        page.wait("document.getElementById('approvals').innerText.includes('approved')")
        deadline = time.monotonic() + 30
        with served.client(key) as http:
            while http.get(f"/v1/runs/{waiting['run_id']}").json()["status"] != "succeeded":
                assert time.monotonic() < deadline, "the approved run did not carry on"
                time.sleep(0.05)
        assert paid == [700]
        page.open(f"{served.url}/ui/runs?status=succeeded")
        assert waiting["run_id"][:12] in page.eval("document.getElementById('runs').innerText")
        print("screenshots:", sorted(p.name for p in shots.iterdir()))


def test_a_signed_in_browser_cannot_be_made_to_act_cross_site(served: Served) -> None:
    """The cookie alone never decides: a POST without the web view's header is refused."""
    key = served.key("acme", "admin")
    with served.client() as http:
        http.cookies.set("kiln_key", key)
        assert http.get("/v1/agents").status_code == 200  # reading with the cookie
        refused = http.post("/v1/agents/assistant/execute", json={"inputs": {"question": "?"}})
        assert refused.status_code == 403
        bad = http.post("/ui/login", data={"key": "kiln_000000000000_" + "x" * 40})
        assert bad.status_code == 401
