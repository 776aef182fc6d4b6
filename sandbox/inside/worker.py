"""The sandboxed worker: serves tool calls read from stdin, one JSON object per line.

It runs inside the sandbox (Debian's python3, stdlib only, as an unprivileged uid) and
forks a fresh child per call, so no state passes from one call to the next: the child sets
its limits, runs the tool and reports on a pipe of its own; the worker watches the wall
clock and the size of the output, then kills every process the call left behind and wipes
/tmp and /work before it answers. Config (argv[1], JSON): the limits, whether the
worker has a pid namespace of its own (then "every other process" is safe to kill), and
the longest answer line the pool reads.

Request:  {"id", "kind": "python", "code" | "entrypoint", "input"}
          {"id", "kind": "shell", "argv", "input"}
Answer:   {"id", "ok": true, "output", "stdout", "ms"}
          {"id", "ok": false, "reason", "error", "stdout", "ms", "clean"}
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import select
import shutil
import signal
import sys
import time
from types import CodeType
from typing import Any, NoReturn

CONFIG = json.loads(sys.argv[1])
LIMITS = CONFIG["limits"]
OWN_PIDNS = CONFIG.get("pidns", True)
WIPE = CONFIG.get("wipe", ["/tmp", "/work"])
WORKDIR = CONFIG.get("workdir", "/work")
PATHS = CONFIG.get("paths", [])
MAX_LINE = CONFIG.get("max_line", 64 * 1024 * 1024)
MB = 1024 * 1024
#: RLIMIT_FSIZE of a call (the tmpfs sizes bound what it can write anyway)
MAX_FILE_MB = 64


def main() -> None:
    _not_dumpable()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            error = "the request is not an object"
        except ValueError as exc:
            request, error = None, str(exc)
        if isinstance(request, dict):
            answer = serve(request)
        else:
            answer = {"id": None, "ok": False, "reason": "protocol", "error": error}
        out.write(_line(answer))
        out.flush()


def _line(answer: dict[str, Any]) -> bytes:
    """The answer as one line, shorter than the pool reads (an output cap above MAX_LINE,
    or JSON escapes, could make it longer: then it is an output failure)."""
    data = json.dumps(answer).encode()
    if len(data) >= MAX_LINE:
        error = f"the answer is larger than the sandbox protocol's {MAX_LINE:,} bytes"
        too_big = {**_failed("output", error, ""), "ms": answer.get("ms", 0.0), "clean": True}
        data = json.dumps({"id": answer.get("id"), **too_big}).encode()
    return data + b"\n"


def _not_dumpable() -> None:
    """No process of the same uid may ptrace the worker or read its memory."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


#: Inline tool code compiled once, in the worker: compiling in each forked child would
#: copy the compiler's pages every time (1.4 ms of a 2 ms call). Compiling runs no code.
_COMPILED: dict[str, CodeType] = {}


def _compiled(source: str) -> CodeType:
    code = _COMPILED.get(source)
    if code is None:
        if len(_COMPILED) >= 64:
            _COMPILED.clear()
        code = _COMPILED[source] = compile(source, "<tool>", "exec")
    return code


def serve(request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    if request.get("code") is not None:
        try:
            _compiled(request["code"])
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
            failed = _failed("exception", _error(exc), "")
            return {"id": request.get("id"), **failed, "ms": 0.0, "clean": True}
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(result_r)
        os.close(output_r)
        _child(request, result_w, output_w)
    os.close(result_w)
    os.close(output_w)
    answer = _watch(pid, result_r, output_r, started, request.get("kind") == "shell")
    clean = _clean_up(pid)
    answer["id"] = request.get("id")
    answer["ms"] = round((time.monotonic() - started) * 1000, 3)
    if not answer["ok"]:
        answer["clean"] = clean
    elif not clean:
        answer = {
            **answer,
            "ok": False,
            "reason": "leak",
            "clean": False,
            "error": "the call left state behind that could not be removed",
        }
    return answer


# -- the child ------------------------------------------------------------------------------


def _child(request: dict[str, Any], result_w: int, output_w: int) -> NoReturn:
    code = 1
    try:
        os.setsid()
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.closerange(3, result_w)
        os.closerange(result_w + 1, 4096)
        os.chdir(WORKDIR)
        key = request.get("idempotency_key")
        if isinstance(key, str) and key.isalnum() and len(key) <= 128:
            os.environ["KILN_IDEMPOTENCY_KEY"] = key  # the same on every retry and resume
        _limit()
        if request.get("kind") == "shell":
            # the result pipe is close-on-exec: a command that starts never sees it, and one
            # that cannot start is reported on it
            argv = [str(a) for a in request["argv"]]
            try:
                os.execvpe(argv[0], argv, os.environ)
            except FileNotFoundError:
                raise FileNotFoundError(f"command not found: {argv[0]}") from None
        value = _run_python(request)
        payload = json.dumps({"output": value}, allow_nan=False)
        code = 0
    except MemoryError:
        payload = json.dumps({"reason": "memory", "error": "memory limit exceeded"})
    except BlockingIOError as exc:
        payload = json.dumps({"reason": "processes", "error": f"cannot start a process: {exc}"})
    except BaseException as exc:  # the tool's bug: reported, never raised
        payload = json.dumps({"reason": "exception", "error": _error(exc)})
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    try:
        _write_all(result_w, payload.encode())
    except BaseException:
        code = 2
    os._exit(code)


def _error(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        text = f"{name}: {exc}" if str(exc) else name
    except BaseException:
        text = name
    return text[:2000]


def _limit() -> None:
    memory = LIMITS["memory_mb"] * MB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(-(-LIMITS["cpu_s"] // 1)))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    files = LIMITS["max_open_files"]
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    # the worker counts too (a process of the same uid), and so does bwrap's init when
    # the worker is not pid 1 itself
    procs = LIMITS["max_processes"] + (1 if os.getppid() == 1 else 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
    size = MAX_FILE_MB * MB
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run_python(request: dict[str, Any]) -> Any:
    arguments = request.get("input") or {}
    if request.get("code") is not None:
        namespace = {"__name__": "__tool__"}
        exec(_compiled(request["code"]), namespace)
        function = namespace.get("run")
        if not callable(function):
            raise TypeError("the tool's code defines no function run(**input)")
    else:
        sys.path[:0] = PATHS
        module, _, name = request["entrypoint"].partition(":")
        function = getattr(importlib.import_module(module), name)
    return function(**arguments)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -- the worker watching ------------------------------------------------------------------


def _watch(pid: int, result_r: int, output_r: int, started: float, shell: bool) -> dict[str, Any]:
    """Read the child's result and output until it exits, the wall clock runs out or the
    output grows past its cap. A pidfd wakes the loop the moment the child exits."""
    deadline = started + LIMITS["timeout_s"]
    cap = LIMITS["max_output_bytes"]
    output = bytearray()
    result = bytearray()
    open_fds = {result_r: result, output_r: output}
    pidfd = os.pidfd_open(pid)
    status: int | None = None
    reason: str | None = None
    try:
        while reason is None:
            done, status_value = os.waitpid(pid, os.WNOHANG)
            if done:
                status = status_value
                # the tool has exited: take what is left in the pipes, but do not wait for
                # a process it left behind that still holds them (clean-up kills that)
                reason = _drain(result_r, open_fds, result, cap) or _drain(
                    output_r, open_fds, output, cap
                )
                break
            left = deadline - time.monotonic()
            if left <= 0:
                reason = "timeout"
                break
            ready, _, _ = select.select([*open_fds, pidfd], [], [], left)
            for fd in ready:
                if fd == pidfd:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    del open_fds[fd]
                    os.close(fd)
                    continue
                open_fds[fd] += chunk
                if len(output) + len(result) > cap:
                    reason = "output"
                    break
    finally:
        os.close(pidfd)
        for fd in open_fds:
            os.close(fd)
    if reason is not None or status is None:
        _kill_group(pid)
    if status is None:
        _, status = os.waitpid(pid, 0)
    return _verdict(reason, status, bytes(result), bytes(output), shell)


def _drain(fd: int, open_fds: dict[int, bytearray], output: bytearray, cap: int) -> str | None:
    """Read what ``fd`` still holds, until EOF or 20 ms without data."""
    while fd in open_fds:
        ready, _, _ = select.select([fd], [], [], 0.02)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            del open_fds[fd]
            os.close(fd)
            return None
        output += chunk
        if len(output) > cap:
            return "output"
    return None


def _verdict(
    reason: str | None, status: int, result: bytes, output: bytes, shell: bool
) -> dict[str, Any]:
    stdout = output[:4096].decode("utf-8", "replace")
    if reason == "timeout":
        return _failed("timeout", f"timeout after {LIMITS['timeout_s']:g} s", stdout)
    if reason == "output":
        cap = LIMITS["max_output_bytes"]
        return _failed("output", f"output limit of {cap:,} bytes exceeded", stdout)
    if os.WIFSIGNALED(status):
        return _failed(*_signal_reason(os.WTERMSIG(status)), stdout)
    code = os.WEXITSTATUS(status)
    if result or not shell:
        # a python tool must leave a result; the result pipe is the tool's own, though: it
        # may have closed it, exited before writing (os._exit) or written anything to it
        try:
            reply = json.loads(result)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            said = "is not a JSON object" if result else f"is missing (exit code {code})"
            return _failed("bad_output", f"the tool's result {said}", stdout)
        if "output" in reply:
            return {"ok": True, "output": reply["output"], "stdout": stdout}
        if reply.get("reason") == "memory":
            reply["error"] = f"memory limit {LIMITS['memory_mb']} MB exceeded"
        return _failed(reply.get("reason", "exception"), reply.get("error", "failed"), stdout)
    return {
        "ok": True,
        "output": {"stdout": output.decode("utf-8", "replace"), "exit_code": code},
        "stdout": "",
    }


def _signal_reason(number: int) -> tuple[str, str]:
    if number in (signal.SIGXCPU, signal.SIGKILL):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if usage.ru_utime + usage.ru_stime >= LIMITS["cpu_s"] * 0.9:
            return "cpu", f"CPU time limit {LIMITS['cpu_s']:g} s exceeded"
    if number == signal.SIGKILL:
        return "killed", f"killed (memory limit {LIMITS['memory_mb']} MB or another limit)"
    if number == signal.SIGXFSZ:
        return "file_size", "file size limit exceeded"
    return "crash", f"the tool's process died of signal {signal.Signals(number).name}"


def _failed(reason: str, error: str, stdout: str) -> dict[str, Any]:
    return {"ok": False, "reason": reason, "error": error, "stdout": stdout}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- after every call ---------------------------------------------------------------------


def _clean_up(pid: int) -> bool:
    """Kill what the call left behind and wipe the writable folders. False when something
    could not be removed: the pool then retires this worker. The call's own process is
    reaped by now: only its group is left to kill."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    clean = _kill_others() if OWN_PIDNS else True
    _reap()
    for folder in WIPE:
        clean = _wipe(folder) and clean
    return clean


def _kill_others() -> bool:
    me = os.getpid()
    for _ in range(50):
        others = [
            int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me)
        ]
        if not others:
            return True
        for other in others:
            try:
                os.kill(other, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _reap()
        time.sleep(0.001)
    return False


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _wipe(folder: str) -> bool:
    try:
        entries = os.listdir(folder)
    except OSError:
        return True
    for name in entries:
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                _writable(path)
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            pass
    try:
        return not os.listdir(folder)
    except OSError:
        return False


def _writable(top: str) -> None:
    """A tool may leave folders it cannot be deleted from (chmod 0): open them up first."""
    for root, dirs, _ in os.walk(top):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
            except OSError:
                pass
    try:
        os.chmod(top, 0o700)
    except OSError:
        pass


if __name__ == "__main__":
    main()
