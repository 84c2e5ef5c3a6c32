"""`segstream worker --processes N`: the children's settings, the restart rule, the supervisor
over real (tiny) processes, and the usage errors raised before anything touches Kafka."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from segstream.app.processes import (
    ProcessSupervisor,
    RestartPolicy,
    child_specs,
    plan_problem,
    unused_store_dirs,
)
from segstream.app.settings import WorkerSettings
from segstream.cli import main
from segstream.cli.processes import check_processes


def _settings(**env: str) -> WorkerSettings:
    return WorkerSettings.from_env({f"SEGSTREAM_{k}": v for k, v in env.items()})


def test_each_child_has_its_own_store_port_id_and_advertised_url() -> None:
    settings = _settings(
        STORE_DIR="/data/store",
        WEB_PORT="6066",
        WORKER_ID="pod-0",
        WEB_ADVERTISE="http://pod-0.segstream:7000",
    )
    specs = child_specs(settings, 3)
    assert [s.store_dir for s in specs] == [Path(f"/data/store/process-{i}") for i in range(3)]
    assert [s.web_port for s in specs] == [6066, 6067, 6068]
    assert [s.worker_id for s in specs] == ["pod-0-p0", "pod-0-p1", "pod-0-p2"]
    assert [s.web_advertise for s in specs] == [
        "http://pod-0.segstream:7000",
        "http://pod-0.segstream:7001",
        "http://pod-0.segstream:7002",
    ]
    assert specs[1].environment() == {
        "SEGSTREAM_PROCESS_INDEX": "1",
        "SEGSTREAM_WORKER_ID": "pod-0-p1",
        "SEGSTREAM_STORE_DIR": "/data/store/process-1",
        "SEGSTREAM_WEB_PORT": "6067",
        "SEGSTREAM_WEB_ADVERTISE": "http://pod-0.segstream:7001",
    }


def test_port_zero_stays_zero_and_a_disabled_web_side_gets_no_port() -> None:
    assert [s.web_port for s in child_specs(_settings(WEB_PORT="0"), 2)] == [0, 0]
    specs = child_specs(_settings(WEB_ENABLED="0"), 2)
    assert [s.web_port for s in specs] == [None, None]
    assert "SEGSTREAM_WEB_PORT" not in specs[0].environment()


def test_plans_that_cannot_work() -> None:
    assert plan_problem(_settings(), 1) is None
    assert plan_problem(_settings(WEB_PORT="65535"), 2) is not None
    assert plan_problem(_settings(WEB_PORT="65534"), 2) is None
    advertised = _settings(WEB_PORT="0", WEB_ADVERTISE="http://a.example:6066")
    assert "SEGSTREAM_WEB_ADVERTISE" in (plan_problem(advertised, 2) or "")
    assert plan_problem(advertised, 1) is None


def test_unused_store_dirs_are_the_single_process_ones_and_those_beyond_n(
    tmp_path: Path,
) -> None:
    for name in ("partition-0", "partition-3", "process-0", "process-1", "process-2"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in unused_store_dirs(tmp_path, 2)] == [
        "partition-0",
        "partition-3",
        "process-2",
    ]
    assert unused_store_dirs(tmp_path / "missing", 2) == []


def test_restart_pauses_double_while_a_child_fails_at_start_then_it_gives_up() -> None:
    policy = RestartPolicy(quick_s=60, first_pause_s=1, max_pause_s=3, give_up_after=4)
    steps = []
    failures = 0
    for _ in range(4):
        failures, pause = policy.next_start(ran_s=2, quick_failures=failures)
        steps.append((failures, pause))
    assert steps == [(1, 1), (2, 2), (3, 3), (4, None)]
    # A child that ran long enough starts over.
    assert policy.next_start(ran_s=61, quick_failures=3) == (0, 1)


def test_supervisor_gives_up_on_a_child_that_keeps_failing(tmp_path: Path) -> None:
    specs = child_specs(_settings(STORE_DIR=str(tmp_path)), 2)
    policy = RestartPolicy(quick_s=30, first_pause_s=0.05, max_pause_s=0.1, give_up_after=3)
    script = (
        "import os, sys, time\n"
        "if os.environ['SEGSTREAM_WORKER_ID'].endswith('-p1'): sys.exit(3)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    code = ProcessSupervisor([sys.executable, "-c", script], specs, policy).run()
    assert code == 1
    # The healthy child was stopped (SIGTERM), not waited out.
    assert time.monotonic() - started < 10


def test_supervisor_forwards_sigterm_and_exits_0(tmp_path: Path) -> None:
    specs = child_specs(_settings(STORE_DIR=str(tmp_path)), 2)
    # Child 0 asks the supervisor to stop (as `kill <supervisor>` would); both then get
    # SIGTERM and exit 0 from their handler.
    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "if os.environ['SEGSTREAM_WORKER_ID'].endswith('-p0'):\n"
        "    time.sleep(0.5); os.kill(os.getppid(), signal.SIGTERM)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    assert ProcessSupervisor([sys.executable, "-c", script], specs).run() == 0
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--processes", "0"], {}, "0 is not in the range x>=1"),
        (["--processes", "2", "--runtime", "faust"], {}, "not with --runtime faust"),
        (["--processes", "1", "--runtime", "faust"], {}, "not with --runtime faust"),
        (
            ["--processes", "2"],
            {"SEGSTREAM_WEB_PORT": "0", "SEGSTREAM_WEB_ADVERTISE": "http://a.example:6066"},
            "needs a fixed SEGSTREAM_WEB_PORT",
        ),
        (
            ["--processes", "2"],
            {"SEGSTREAM_WEB_HOST": "10.0.0.5", "SEGSTREAM_API_TOKEN": "t" * 32},
            "SEGSTREAM_API_PEER_URLS",
        ),
    ],
)
def test_usage_errors_before_kafka(args: list[str], env: dict[str, str], message: str) -> None:
    # A broker nobody listens on: a usage error must come before any connection attempt.
    env = {"SEGSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9", **env}
    result = CliRunner().invoke(main, ["worker", *args], env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_peer_rule_decides_which_setups_forward_between_children() -> None:
    # Loopback: any loopback port is a peer (the default rule).
    assert len(check_processes(_settings(), 2)) == 2
    # A private IP with the default rule wants the same port: refused; patterns fix it.
    exposed = {"WEB_HOST": "10.0.0.5", "API_TOKEN": "t" * 32}
    with pytest.raises(click.UsageError, match=re.escape("would not call http://10.0.0.5:6067")):
        check_processes(_settings(**exposed), 2)
    assert check_processes(_settings(**exposed, API_PEER_URLS="http://10.0.0.*:*"), 2)
    # The Kubernetes example's pattern names one port: refused until it names the others.
    k8s = {
        **exposed,
        "WEB_HOST": "0.0.0.0",
        "WEB_ADVERTISE": "http://segstream-0.segstream.ns.svc.cluster.local:6066",
        "API_PEER_URLS": "http://*.segstream.ns.svc.cluster.local:6066",
    }
    with pytest.raises(click.UsageError, match="SEGSTREAM_API_PEER_URLS"):
        check_processes(_settings(**k8s), 2)
    k8s["API_PEER_URLS"] = "http://*.segstream.ns.svc.cluster.local:606[6-7]"
    assert len(check_processes(_settings(**k8s), 2)) == 2


def test_a_child_that_cannot_be_started_is_an_error_not_a_hang(tmp_path: Path) -> None:
    specs = child_specs(_settings(STORE_DIR=str(tmp_path)), 2)
    with pytest.raises(FileNotFoundError):
        ProcessSupervisor([str(tmp_path / "no-such-program")], specs).run()
