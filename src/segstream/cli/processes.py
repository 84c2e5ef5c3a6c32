"""`segstream worker --processes N` (N > 1): checks the plan, then runs the supervisor
(segstream.app.processes) over N ordinary `segstream worker` processes."""

from __future__ import annotations

import logging
import sys

import click

from segstream.api.peers import peer_url_problem
from segstream.app.processes import (
    ChildSpec,
    ProcessSupervisor,
    child_specs,
    plan_problem,
    unused_store_dirs,
)
from segstream.app.settings import PREFIX, WorkerSettings

__all__ = ["check_processes", "run_processes"]

log = logging.getLogger("segstream.processes")

#: What each child runs: the same worker, one process (this interpreter, no PATH lookup).
CHILD_COMMAND = (sys.executable, "-m", "segstream", "worker", "--runtime", "native")


def check_processes(settings: WorkerSettings, processes: int) -> list[ChildSpec]:
    """The children's specs; a usage error when they cannot work as configured."""
    problem = plan_problem(settings, processes)
    if problem is None:
        specs = child_specs(settings, processes)
        problem = _peer_problem(settings, specs)
    if problem is not None:
        raise click.UsageError(problem)
    return specs


def _peer_problem(settings: WorkerSettings, specs: list[ChildSpec]) -> str | None:
    """Why the children could not forward API calls to each other (None: they can), by the
    API's own peer rule (segstream.api.peers) over the URLs they will advertise."""
    if not settings.web_enabled:
        return None
    host = f"[{settings.web_host}]" if ":" in settings.web_host else settings.web_host
    # A port chosen by the OS is not known yet: distinct stand-ins test the rule the same way.
    urls = [s.url(settings) or f"http://{host}:{1 + s.index}" for s in specs]
    for own in urls:
        for peer in urls:
            if peer == own:
                continue
            why = peer_url_problem(peer, settings.api_peer_urls, own)
            if why is not None:
                return (
                    f"with --processes the workers advertise {urls[0]} and the next ports, "
                    f"but {own} would not call {peer}: {why}. Set {PREFIX}API_PEER_URLS to "
                    "patterns that match every worker's URL (docs/scaling.md, 'Several "
                    "processes per machine')"
                )
    return None


def run_processes(settings: WorkerSettings, specs: list[ChildSpec]) -> int:
    """Run the children until SIGTERM/SIGINT; the supervisor's exit code."""
    for path in unused_store_dirs(settings.store_dir, len(specs)):
        # Not deleted: going back to that layout reuses them (a restore catches up).
        log.warning(
            "store %s is not used with --processes %d (each process has its own "
            "process-<i> directory, rebuilt from the changelog when missing); delete it to "
            "free the disk",
            path,
            len(specs),
        )
    log.info("supervising %d worker processes", len(specs))
    return ProcessSupervisor(CHILD_COMMAND, specs).run()
