"""The worker pool's mechanics: reuse, recycling, queueing and workers that misbehave.

Run on the ``none`` backend (no isolation: these tests are about the pool, and the
isolation suite is tests/integration/test_sandbox_security.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import sandbox.pool
from sandbox.backends.base import Launch
from sandbox.pool import CallResult, Pool, PoolSettings, SandboxError, _Slots
from sandbox.profile import Profile
from tests.helpers import readable_by_all

PROFILE = Profile(backend="none", timeout_s=5)


def _code(body: str) -> dict[str, Any]:
    return {"kind": "python", "code": body, "input": {}}


ECHO = _code("def run(**kw): return kw or 1")


def _run(test: Callable[[Pool], Awaitable[None]], settings: PoolSettings) -> None:
    async def main() -> None:
        async with Pool(settings) as pool:
            await test(pool)

    anyio.run(main)


def test_a_worker_serves_many_calls_and_is_replaced_after_max_calls() -> None:
    async def test(pool: Pool) -> None:
        results = [await pool.call(PROFILE, ECHO) for _ in range(7)]
        assert all(r.ok and r.output == 1 for r in results)
        assert pool.started == 3 and pool.retired == 2

    _run(test, PoolSettings(size=1, max_calls=3))


def test_a_tool_exception_keeps_the_worker() -> None:
    async def test(pool: Pool) -> None:
        bad = await pool.call(PROFILE, _code("def run(): raise ValueError('no good')"))
        good = await pool.call(PROFILE, ECHO)
        assert (bad.ok, bad.reason, bad.error) == (False, "exception", "ValueError: no good")
        assert good.ok and pool.started == 1

    _run(test, PoolSettings(size=1))


def test_a_syntax_error_is_reported_without_running_anything() -> None:
    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, _code("def run(:\n"))
        assert not result.ok and result.reason == "exception"
        assert result.error is not None and result.error.startswith("SyntaxError")

    _run(test, PoolSettings(size=1))


def test_a_timeout_retires_the_worker() -> None:
    slow = Profile(backend="none", timeout_s=0.3)

    async def test(pool: Pool) -> None:
        result = await pool.call(slow, _code("import time\ndef run(): time.sleep(30)"))
        assert (result.ok, result.reason, result.error) == (False, "timeout", "timeout after 0.3 s")
        assert (await pool.call(slow, ECHO)).ok
        assert pool.started == 2

    _run(test, PoolSettings(size=1))


def test_a_worker_that_stops_answering_is_killed_from_outside() -> None:
    quick = Profile(backend="none", timeout_s=0.2)
    freeze = _code("import os, signal\ndef run(): os.kill(os.getppid(), signal.SIGSTOP)")

    async def test(pool: Pool) -> None:
        result = await pool.call(quick, freeze)
        assert not result.ok and result.reason == "timeout"
        assert result.error == "timeout after 0.2 s (the sandbox stopped answering)"
        assert (await pool.call(quick, ECHO)).ok

    _run(test, PoolSettings(size=1))


def test_a_worker_that_dies_mid_call_is_a_crash_and_is_replaced() -> None:
    die = _code("import os, signal\ndef run(): os.kill(os.getppid(), signal.SIGKILL)")

    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, die)
        assert not result.ok and result.reason == "crash"
        assert result.error is not None and "died during the call" in result.error
        assert (await pool.call(PROFILE, ECHO)).ok and pool.started == 2

    _run(test, PoolSettings(size=1))


def test_calls_beyond_the_pool_wait_in_a_bounded_queue() -> None:
    nap = _code("import time\ndef run(): time.sleep(0.3); return 'slept'")
    outcomes: list[CallResult | str] = []

    async def one(pool: Pool) -> None:
        try:
            outcomes.append(await pool.call(PROFILE, nap))
        except SandboxError as exc:
            outcomes.append(str(exc))

    async def test(pool: Pool) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one, pool)
                await anyio.sleep(0.02)

    _run(test, PoolSettings(size=1, queue=1))
    refused = [o for o in outcomes if isinstance(o, str)]
    assert len(refused) == 1 and refused[0].startswith("sandbox pool busy: 1 calls already")
    assert [o.output for o in outcomes if isinstance(o, CallResult)] == ["slept", "slept"]


def test_a_call_waits_for_a_worker_no_longer_than_the_queue_timeout() -> None:
    nap = _code("import time\ndef run(): time.sleep(1)")
    errors: list[str] = []

    async def waiter(pool: Pool) -> None:
        await anyio.sleep(0.05)
        try:
            await pool.call(PROFILE, ECHO)
        except SandboxError as exc:
            errors.append(str(exc))

    async def test(pool: Pool) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.call, PROFILE, nap)
            tg.start_soon(waiter, pool)

    _run(test, PoolSettings(size=1, queue_timeout_s=0.2))
    assert errors == ["no sandbox worker became free within 0.2 s"]


def test_warm_starts_workers_before_the_first_call() -> None:
    async def test(pool: Pool) -> None:
        await pool.warm(PROFILE, 2)
        assert pool.started == 2
        assert (await pool.call(PROFILE, ECHO)).ok and pool.started == 2

    _run(test, PoolSettings(size=2))


class _Broken:
    """A backend whose sandbox dies at start, saying why on stderr."""

    name = "none"

    def problem(self) -> str | None:
        return None

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        return Launch(argv=("/bin/sh", "-c", "echo 'bad mount: /kiln' >&2; exit 3"), env={})


def test_a_sandbox_that_does_not_start_says_why() -> None:
    async def main() -> None:
        async with Pool(backends={"none": _Broken()}) as pool:
            with pytest.raises(SandboxError, match="did not start: bad mount: /kiln"):
                await pool.call(PROFILE, ECHO)

    anyio.run(main)


def test_output_and_exceptions_cross_as_json() -> None:
    async def test(pool: Pool) -> None:
        result = await pool.call(
            PROFILE,
            {"kind": "python", "code": "def run(a, b): print('hi'); return {'sum': a + b}",
             "input": {"a": 1, "b": 2}},
        )  # fmt: skip
        assert result.ok and result.output == {"sum": 3} and result.stdout == "hi\n"
        odd = await pool.call(PROFILE, _code("def run(): return float('nan')"))
        assert not odd.ok and odd.reason == "exception" and "JSON" in (odd.error or "")

    _run(test, PoolSettings(size=1))


def test_a_process_left_holding_the_pipes_does_not_hold_up_the_answer() -> None:
    leave = _code(
        "import os, time\n"
        "def run():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid(); time.sleep(30); os._exit(0)\n"
        "    return 'answered'\n"
    )

    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, leave)
        assert result.ok and result.output == "answered"
        assert result.ms < 2_000  # not the 5 s timeout: the child exited long before

    _run(test, PoolSettings(size=1))


def test_a_cancelled_call_retires_its_worker() -> None:
    nap = _code("import time\ndef run(): time.sleep(5)")

    async def test(pool: Pool) -> None:
        await pool.warm(PROFILE, 1)
        idle = pool._pool(PROFILE).idle
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await pool.call(PROFILE, nap)

            tg.start_soon(call)
            # Cancel once the call holds the worker, however slowly a loaded machine got
            # there (a fixed 0.2 s could fall before the worker was even taken).
            with anyio.fail_after(30):
                while idle:  # noqa: ASYNC110 - the pool offers no event to wait on
                    await anyio.sleep(0.01)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        assert (pool.started, pool.retired) == (1, 1)
        assert (await pool.call(PROFILE, ECHO)).ok and pool.started == 2

    _run(test, PoolSettings(size=1))


def test_two_pools_never_share_slots() -> None:
    """Two kiln processes on one machine: each pool claims its own block of outside uids."""

    async def main() -> None:
        async with Pool(PoolSettings(size=1)) as first, Pool(PoolSettings(size=1)) as second:
            await first.warm(PROFILE)
            await second.warm(PROFILE)
            (a,) = first._live
            (b,) = second._live
            assert abs(a.slot - b.slot) >= 64

    anyio.run(main)


def test_a_worker_that_died_while_idle_is_replaced_not_used() -> None:
    """A process a ``none`` call left behind (it escaped the call's group) kills the idle
    worker: the next call gets a new worker, not a crash."""
    kill_later = _code(
        "import os, signal, time\n"
        "def run():\n"
        "    worker = os.getppid()\n"
        "    if os.fork() == 0:\n"
        "        os.setsid(); time.sleep(0.2); os.kill(worker, signal.SIGKILL); os._exit(0)\n"
        "    return 'answered'\n"
    )

    async def test(pool: Pool) -> None:
        assert (await pool.call(PROFILE, kill_later)).ok
        await anyio.sleep(0.6)
        after = await pool.call(PROFILE, ECHO)
        assert (after.ok, after.reason) == (True, None)
        assert (pool.started, pool.retired) == (2, 1)

    _run(test, PoolSettings(size=1))


class _Slow:
    """A backend whose sandbox never says it is ready."""

    name = "none"

    def problem(self) -> str | None:
        return None

    def launch(self, profile: Profile, slot: int, worker_dir: Path) -> Launch:
        return Launch(argv=("/bin/sh", "-c", "sleep 30"), env={})


def test_a_call_cancelled_while_its_worker_starts_retires_that_worker() -> None:
    async def main() -> None:
        async with Pool(backends={"none": _Slow()}) as pool:
            with anyio.move_on_after(0.3):
                await pool.call(PROFILE, ECHO)
            assert (pool.started, pool.retired, pool._live) == (1, 1, set())

    anyio.run(main)


def test_a_launch_that_cannot_be_prepared_is_a_sandbox_error() -> None:
    unreadable = Profile(backend="none", paths=("/nonexistent/kiln-tools",))

    async def test(pool: Pool) -> None:
        with pytest.raises(SandboxError, match="cannot start a none sandbox: .* could not read"):
            await pool.call(unreadable, ECHO)
        assert pool._slots._free == [pool._slots._base]  # the slot is free again
        assert (await pool.call(PROFILE, ECHO)).ok

    _run(test, PoolSettings(size=1))


def test_a_python_tool_that_exits_without_a_result_fails() -> None:
    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, _code("import os\ndef run(): os._exit(0)"))
        assert (result.ok, result.reason) == (False, "bad_output")
        assert result.error == "the tool's result is missing (exit code 0)"
        assert (await pool.call(PROFILE, ECHO)).ok and pool.started == 1

    _run(test, PoolSettings(size=1))


def test_odd_requests_are_answered_and_the_worker_lives_on() -> None:
    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, {"kind": "python", "code": 5, "input": {}})
        assert (result.ok, result.reason) == (False, "exception")
        (worker,) = pool._live
        assert worker.process.stdin is not None
        for line in (b"[1]\n", b"not json\n"):
            await worker.process.stdin.send(line)
            answer = json.loads(await worker.reader.receive_until(b"\n", 4096))
            assert (answer["id"], answer["reason"]) == (None, "protocol")
        assert (await pool.call(PROFILE, ECHO)).ok and pool.started == 1

    _run(test, PoolSettings(size=1))


def test_an_answer_longer_than_the_protocol_allows_is_an_output_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.pool, "MAX_LINE", 100_000)

    async def test(pool: Pool) -> None:
        result = await pool.call(PROFILE, _code("def run(): return 'x' * 200_000"))
        assert (result.ok, result.reason) == (False, "output")
        assert result.error == "the answer is larger than the sandbox protocol's 100,000 bytes"
        assert (await pool.call(PROFILE, ECHO)).ok

    _run(test, PoolSettings(size=1))


def test_a_slot_given_back_after_release_is_not_reused() -> None:
    """A retire that outlives ``aclose`` (its kill is shielded) gives its slot back late."""
    slots = _Slots()
    slot = slots.take()
    try:
        slots.release()
        slots.give(slot)
        assert slots._free == []
    finally:
        slots.release()


def test_a_shell_command_that_does_not_exist_says_so() -> None:
    async def test(pool: Pool) -> None:
        missing = await pool.call(
            PROFILE, {"kind": "shell", "argv": ["definitely-not-a-command", "x"], "input": {}}
        )
        assert not missing.ok and missing.reason == "exception"
        assert missing.error == "FileNotFoundError: command not found: definitely-not-a-command"
        echo = await pool.call(PROFILE, {"kind": "shell", "argv": ["echo", "hi"], "input": {}})
        assert echo.ok and echo.output == {"stdout": "hi\n", "exit_code": 0}

    _run(test, PoolSettings(size=1))


def test_forget_retires_the_workers_of_a_finished_runs_workspace(tmp_path: Path) -> None:
    first, second = (
        Profile(backend="none", timeout_s=5, workspace=str(tmp_path / name)) for name in "ab"
    )
    for profile in (first, second):
        Path(str(profile.workspace)).mkdir()
    readable_by_all(tmp_path)

    async def test(pool: Pool) -> None:
        await pool.call(first, ECHO)
        await pool.call(second, ECHO)
        await pool.forget(str(first.workspace))
        assert (pool.started, pool.retired) == (2, 1)
        assert (await pool.call(second, ECHO)).ok and pool.started == 2  # still warm
        assert (await pool.call(first, ECHO)).ok and pool.started == 3  # a new one

    _run(test, PoolSettings(size=1))
