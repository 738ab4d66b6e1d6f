"""A pre-imported Python that forks the lab's task processes, so a task starts in milliseconds.

Importing the reference server costs about 1.3 CPU-s per process (the mcp SDK builds its
pydantic types at import), and a lab run starts 4 to 16 tasks. A lab run starts one fork server
that imports the task's module once, then forks a child per task. Each child is a real process
of its own: its own pid and session, stdout and stderr pipes, environment, working directory and
exit status. It runs the same ``__main__`` as ``python -m <module>``, from a copy of an
interpreter that has already imported it. multiprocessing's forkserver does this for functions;
this one keeps what the lab reads of a ``subprocess.Popen``: signals, exit codes and pipes.

What a fork does not redo: the interpreter's start-up options (``-X``, ``PYTHON*`` variables
read at start-up) are the fork server's, and anything a module computed at import is shared.
The reference server reads its settings in ``main``, so neither differs between tasks.

The protocol runs over one ``SOCK_SEQPACKET`` socket pair, one JSON message per packet:

- lab to server: ``{"module", "argv", "env", "cwd"}`` with the write ends of the child's stdout
  and stderr attached (SCM_RIGHTS);
- server to lab: ``{"ready": true}`` once imported, ``{"pid": n}`` per fork, and later
  ``{"exited": n, "code": c}`` when it reaps the child. A negative ``c`` means the child was
  killed by that signal, as in ``Popen.returncode``.

When the lab closes its end, the server sends SIGTERM to the children it still has (SIGKILL after
10 s, as a supervisor would), and exits once they have.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_PACKET = 1 << 20  # an environment of a few kB; the socket's buffer bounds a packet anyway


class ForkServerError(RuntimeError):
    """The fork server did not start, or died."""


class ForkServer:
    """One fork server process; ``spawn`` starts a task. Use as a context manager."""

    def __init__(self, preload: Sequence[str], start_timeout: float = 60.0) -> None:
        self.preload = list(preload)
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._lock = threading.Lock()  # one spawn at a time: a reply is the next "pid" packet
        self._cond = threading.Condition()
        self._ready = False
        self._gone = False
        self._pids: list[int] = []
        self._codes: dict[int, int] = {}

    def __enter__(self) -> ForkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> ForkServer:
        """Start the server; it imports ``preload`` while the caller goes on."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "lab.forkserver", str(theirs.fileno()), *self.preload],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # a child gets its own pipes; the server writes nothing
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # children inherit sys.stdout's mode
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,
            )
        self._channel = ours
        threading.Thread(target=self._listen, daemon=True, name="forkserver").start()
        return self

    def spawn(
        self,
        module: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        stderr_to_stdout: bool = False,
    ) -> ForkedProcess:
        """Fork a child that runs ``python -m module *argv`` with ``env`` in ``cwd``; its stderr
        is a pipe of its own, or its stdout's (``stderr=subprocess.STDOUT``)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe() if not stderr_to_stdout else (-1, os.dup(out_w))
        request = {"module": module, "argv": list(argv), "env": dict(env), "cwd": str(cwd)}
        try:
            with self._lock:
                self._wait_for(lambda: self._ready, "did not finish importing")
                before = len(self._pids)
                assert self._channel is not None
                socket.send_fds(self._channel, [json.dumps(request).encode()], [out_w, err_w])
                self._wait_for(lambda: len(self._pids) > before, "did not fork")
                pid = self._pids[before]
        except BaseException:
            for fd in (out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        return ForkedProcess(pid, self, open(out_r), open(err_r) if err_r >= 0 else None)

    def close(self, timeout: float = 30.0) -> None:
        """Close the channel: the server stops its remaining children and exits."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.shutdown(socket.SHUT_RDWR)
            channel.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=timeout)

    def returncode(self, pid: int) -> int | None:
        with self._cond:
            if pid in self._codes:
                return self._codes[pid]
            if self._gone and not _alive(pid):
                # The server died before it could report: the exit status is lost with it.
                self._codes[pid] = -signal.SIGKILL
                return self._codes[pid]
            return None

    def wait_for_exit(self, pid: int, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (code := self.returncode(pid)) is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(0.2 if left is None else min(left, 0.2))
            return code

    def _wait_for(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while not condition():
                if self._gone:
                    raise ForkServerError(f"the fork server {what}: it exited")
                if time.monotonic() > deadline:
                    raise ForkServerError(f"the fork server {what} in {self.start_timeout} s")
                self._cond.wait(0.2)

    def _listen(self) -> None:
        channel = self._channel
        assert channel is not None
        try:
            while packet := channel.recv(_PACKET):
                message = json.loads(packet)
                with self._cond:
                    if "pid" in message:
                        self._pids.append(int(message["pid"]))
                    elif "exited" in message:
                        self._codes[int(message["exited"])] = int(message["code"])
                    elif message.get("ready"):
                        self._ready = True
                    self._cond.notify_all()
        except OSError:
            pass  # closed by ``close``
        finally:
            with self._cond:
                self._gone = True
                self._cond.notify_all()


class ForkedProcess:
    """A child of the fork server, with the part of ``subprocess.Popen`` the lab uses."""

    def __init__(
        self, pid: int, server: ForkServer, stdout: IO[str], stderr: IO[str] | None
    ) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self._server = server
        self._output: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def returncode(self) -> int | None:
        return self._server.returncode(self.pid)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._server.wait_for_exit(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"task process {self.pid}", timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """Read stdout to its end and wait for the exit, as ``Popen.communicate``; only for a
        child spawned with ``stderr_to_stdout`` (a separate stderr pipe could fill and block)."""
        if self.stderr is not None:
            raise ValueError("communicate() needs stderr_to_stdout=True")
        if self._reader is None:
            self._reader = threading.Thread(
                target=lambda: self._output.append(self.stdout.read()), daemon=True
            )
            self._reader.start()
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise subprocess.TimeoutExpired(f"task process {self.pid}", timeout or 0.0)
        self.wait(timeout=30)  # its output has ended: the exit follows at once
        return "".join(self._output), None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the server side: ``python -m lab.forkserver FD MODULE...`` -------------------------------


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the lab has gone: nobody is left to tell
        channel.send(json.dumps(message).encode())


def _reap(channel: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(channel, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stop(children: set[int], grace: float = 10.0) -> None:
    """SIGTERM the children left, SIGKILL those still running after ``grace``; reap them all."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                children.discard(pid)
            else:
                time.sleep(0.05)


def serve(channel: socket.socket) -> dict[str, Any] | None:
    """Fork a child per request. Returns in a child (its request) or when the lab has gone."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the select below
    children: set[int] = set()
    _send(channel, {"ready": True})
    while True:
        ready, _, _ = select.select([channel.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(channel, children)
        if channel.fileno() not in ready:
            continue
        packet, fds, _, _ = socket.recv_fds(channel, _PACKET, 2)
        if not packet:  # the lab closed its end
            _stop(children)
            return None
        request = json.loads(packet)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            channel.close()
            os.close(wake_r)
            os.close(wake_w)
            os.setsid()  # as Popen(start_new_session=True): a terminal's Ctrl-C is the lab's
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for fd in fds:
                os.close(fd)
            return dict(request)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        _send(channel, {"pid": pid})


def become(request: Mapping[str, Any]) -> None:
    """In a forked child: become ``python -m module *argv`` (its SystemExit ends the process)."""
    import runpy

    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    module = request["module"]
    sys.argv = [module, *request["argv"]]
    # The preloaded ``module.__main__`` runs again as ``__main__`` (runpy warns if it is cached);
    # everything it imports stays imported.
    sys.modules.pop(f"{module}.__main__", None)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: Sequence[str]) -> None:
    channel = socket.socket(fileno=int(argv[0]))
    for module in argv[1:]:
        importlib.import_module(module)
    if threading.active_count() != 1:  # a fork copies only the forking thread
        raise SystemExit(f"fork server: importing {argv[1:]} started a thread; cannot fork")
    request = serve(channel)
    if request is not None:
        become(request)


if __name__ == "__main__":
    main(sys.argv[1:])
