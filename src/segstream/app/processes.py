"""`segstream worker --processes N`: one supervisor and N worker processes on one machine.

A worker is one Python event loop on one core; a machine with more cores runs more of them.
Each child is an ordinary `segstream worker` (a member of the consumer group, as if started
by hand) with its own store directory, web port and worker id, derived here from the
supervisor's settings. The supervisor forwards SIGTERM/SIGINT to the children and waits for
them, restarts a child that dies (after a pause that grows while it keeps failing soon after
its start) and gives up, stopping the others and exiting 1, when one keeps failing
(`RestartPolicy`). docs/scaling.md, "Several processes per machine", is the user's side.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from segstream.app.settings import PREFIX, WorkerSettings

__all__ = [
    "ChildSpec",
    "ProcessSupervisor",
    "RestartPolicy",
    "child_specs",
    "plan_problem",
    "unused_store_dirs",
]

log = logging.getLogger("segstream.processes")

#: How often the supervisor looks at its children and at the signals it got.
POLL_INTERVAL_S = 0.2
#: prctl(2) option: the signal a child gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    """What makes child `index` a worker of its own: store, port, id, advertised URL."""

    index: int
    worker_id: str
    store_dir: Path
    #: Its web port (0: one the OS picks, logged by the child); None: web disabled.
    web_port: int | None
    #: The URL its status records advertise to peers (None: its bound address).
    web_advertise: str | None

    def environment(self) -> dict[str, str]:
        """The `SEGSTREAM_*` variables that differ from the supervisor's."""
        env = {
            f"{PREFIX}PROCESS_INDEX": str(self.index),
            f"{PREFIX}WORKER_ID": self.worker_id,
            f"{PREFIX}STORE_DIR": str(self.store_dir),
        }
        if self.web_port is not None:
            env[f"{PREFIX}WEB_PORT"] = str(self.web_port)
        if self.web_advertise is not None:
            env[f"{PREFIX}WEB_ADVERTISE"] = self.web_advertise
        return env

    def url(self, settings: WorkerSettings) -> str | None:
        """The URL peers will see for it (None: web disabled, or a port not known yet)."""
        if self.web_advertise is not None:
            return self.web_advertise
        if self.web_port is None or self.web_port == 0:
            return None
        host = settings.web_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.web_port}"


def plan_problem(settings: WorkerSettings, processes: int) -> str | None:
    """Why `processes` children cannot be derived from `settings` (None: they can)."""
    if processes < 1:
        return "--processes must be at least 1"
    if not settings.web_enabled or processes == 1:
        return None
    if settings.web_port != 0 and settings.web_port + processes - 1 > 65535:
        return (
            f"{PREFIX}WEB_PORT={settings.web_port} leaves no room for {processes} ports "
            "(the children use it and the next ones)"
        )
    if settings.web_advertise is not None:
        if settings.web_port == 0:
            return (
                f"{PREFIX}WEB_ADVERTISE needs a fixed {PREFIX}WEB_PORT with --processes: "
                "each child advertises its own port"
            )
        if _port(settings.web_advertise) + processes - 1 > 65535:
            return f"{PREFIX}WEB_ADVERTISE's port leaves no room for {processes} ports"
    return None


def child_specs(settings: WorkerSettings, processes: int) -> list[ChildSpec]:
    """The children of `segstream worker --processes N` (check `plan_problem` first).

    Child i: store `<STORE_DIR>/process-<i>`, web port `WEB_PORT + i` (0 stays 0), worker id
    `<WORKER_ID>-p<i>`, and an advertised URL (when one is set) whose port is the advertised
    port + i."""
    specs = []
    for i in range(processes):
        port: int | None = None
        if settings.web_enabled:
            port = settings.web_port + i if settings.web_port else 0
        advertise = None
        if settings.web_enabled and settings.web_advertise is not None:
            advertise = _with_port(settings.web_advertise, _port(settings.web_advertise) + i)
        specs.append(
            ChildSpec(
                index=i,
                worker_id=f"{settings.worker_id}-p{i}",
                store_dir=settings.store_dir / f"process-{i}",
                web_port=port,
                web_advertise=advertise,
            )
        )
    return specs


def unused_store_dirs(store_dir: Path, processes: int) -> list[Path]:
    """Directories under `store_dir` that `processes` children do not use: partition stores of a
    single-process worker (`partition-<p>`) and those of children beyond the count."""
    if not store_dir.is_dir():
        return []
    unused = []
    for path in sorted(store_dir.iterdir()):
        if not path.is_dir():
            continue
        name = path.name
        if name.startswith("partition-"):
            unused.append(path)
        elif name.startswith("process-"):
            index = name.removeprefix("process-")
            if not index.isdigit() or int(index) >= processes:
                unused.append(path)
    return unused


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, f"{shown}:{port}", "", "", ""))


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead child is started again, and when the supervisor gives up.

    A child that exits within `quick_s` of its start failed at start: the pause before its
    next start doubles from `first_pause_s` up to `max_pause_s`, and after `give_up_after`
    such failures in a row the supervisor stops the others and exits 1 (a setting, the
    broker or the disk that keeps a worker from starting is not fixed by restarting it).
    A child that ran longer is restarted after `first_pause_s` and its count starts over.
    """

    quick_s: float = 60.0
    first_pause_s: float = 1.0
    max_pause_s: float = 30.0
    give_up_after: int = 5

    def next_start(self, ran_s: float, quick_failures: int) -> tuple[int, float | None]:
        """After a child ran `ran_s` and had failed at start `quick_failures` times in a row
        before: its new count, and the pause before its restart (None: give up)."""
        if ran_s >= self.quick_s:
            return 0, self.first_pause_s
        failures = quick_failures + 1
        if failures >= self.give_up_after:
            return failures, None
        return failures, min(self.max_pause_s, self.first_pause_s * 2 ** (failures - 1))


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    quick_failures: int = 0


class ProcessSupervisor:
    """Runs one `command` process per spec until SIGTERM/SIGINT; `run()` gives the exit code."""

    def __init__(
        self,
        command: Sequence[str],
        specs: Sequence[ChildSpec],
        policy: RestartPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._command = list(command)
        self._children = [_Child(spec) for spec in specs]
        self._policy = policy or RestartPolicy()
        self._environ = dict(os.environ if environ is None else environ)
        self._signals: list[int] = []

    def run(self) -> int:
        """Start the children, keep them running, stop them on a signal: 0 when they all
        stopped cleanly then, 1 when one of them kept failing or did not stop cleanly."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            failed = True
            try:
                for child in self._children:
                    self._start(child)
                failed = self._keep_running()
            finally:
                # Also when starting one failed (an OSError from fork): no child is left behind.
                clean = self._stop_all()
            return 1 if failed or not clean else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _start(self, child: _Child) -> None:
        spec = child.spec
        # The command is ours (this interpreter's `segstream worker`), not user input.
        child.process = subprocess.Popen(  # noqa: S603
            self._command,
            env={**self._environ, **spec.environment()},
            preexec_fn=_die_with_parent(os.getpid()),
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        port = "disabled" if spec.web_port is None else spec.web_port or "chosen by the child"
        log.info(
            "process %d started: pid %d, web port %s, store %s, worker id %s",
            spec.index,
            child.process.pid,
            port,
            spec.store_dir,
            spec.worker_id,
        )

    def _keep_running(self) -> bool:
        """Until a signal (False) or a child that keeps failing at start (True)."""
        while not self._signals:
            now = time.monotonic()
            for child in self._children:
                process = child.process
                if process is not None and process.poll() is not None:
                    if not self._exited(child, process, now):
                        return True
                elif child.restart_at is not None and now >= child.restart_at:
                    self._start(child)
            time.sleep(POLL_INTERVAL_S)
        return False

    def _exited(self, child: _Child, process: subprocess.Popen[bytes], now: float) -> bool:
        """A child died unasked: schedule its restart (False: give up instead)."""
        ran_s = now - child.started_at
        child.process = None
        child.quick_failures, pause = self._policy.next_start(ran_s, child.quick_failures)
        index, pid, code = child.spec.index, process.pid, _exit_text(process.returncode)
        if pause is None:
            log.error(
                "process %d (pid %d) exited with %s after %.1fs, its %d%s failure within "
                "%.0fs of its start in a row; giving up, stopping the other processes",
                index,
                pid,
                code,
                ran_s,
                child.quick_failures,
                _ordinal(child.quick_failures),
                self._policy.quick_s,
            )
            return False
        log.warning(
            "process %d (pid %d) exited unexpectedly with %s after %.1fs; restarting it in %.1fs",
            index,
            pid,
            code,
            ran_s,
            pause,
        )
        child.restart_at = now + pause
        return True

    def _stop_all(self) -> bool:
        """SIGTERM to every running child and wait (a second signal: SIGKILL); True when each
        stopped cleanly."""
        running = [c for c in self._children if c.process is not None]
        seen = len(self._signals)
        log.info("stopping: SIGTERM to %d processes", len(running))
        for child in running:
            assert child.process is not None
            _send(child.process, signal.SIGTERM)
        clean = True
        killed = False
        while running:
            if len(self._signals) > seen and not killed:
                # Asked twice: stop now (exactly once survives a kill, as after a crash).
                log.warning("asked again: SIGKILL to %d processes", len(running))
                for child in running:
                    assert child.process is not None
                    _send(child.process, signal.SIGKILL)
                killed = True
            for child in list(running):
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                running.remove(child)
                ok = code in (0, -signal.SIGTERM, -signal.SIGINT)
                clean = clean and ok
                log.log(
                    logging.INFO if ok else logging.WARNING,
                    "process %d (pid %d) stopped with %s",
                    child.spec.index,
                    child.process.pid,
                    _exit_text(code),
                )
                child.process = None
            time.sleep(POLL_INTERVAL_S if running else 0)
        return clean


def _send(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: poll() reports it
        process.send_signal(sig)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec function: on Linux the child gets SIGTERM when the supervisor dies (even of
    kill -9), so no worker outlives it; elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return None
    # Looked up before the fork: the child only makes the call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the call took effect
            os._exit(1)

    return preexec
