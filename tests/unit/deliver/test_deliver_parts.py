"""The pieces of `segstream deliver` that need no broker: signatures, secrets, the outbound
policy, backoff, Retry-After, the destination record's versions and validation."""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from segstream.app.deliver.runner import batch_body, message_id
from segstream.app.deliver.sender import backoff_delay, retry_after_seconds
from segstream.app.deliver.signing import (
    SecretUnavailable,
    load_secrets,
    parse_secret,
    sign,
    webhook_headers,
)
from segstream.app.destination_writer import DestinationState, public_view
from segstream.app.outbound import OutboundPolicy
from segstream.schemas.destinations import validate_destination

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()


def test_signatures_verify_with_the_reference_implementation() -> None:
    body = b'{"destination_id":"crm","events":[{"id":"x"}]}'
    import time

    headers = webhook_headers([parse_secret(SECRET, "t")], "msg_1", int(time.time()), body)
    Webhook(SECRET).verify(body, headers, json_parse=False)
    with pytest.raises(Exception, match="signature"):
        Webhook(OTHER).verify(body, headers, json_parse=False)
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body + b" ", headers, json_parse=False)


def test_a_rotation_signs_with_every_secret() -> None:
    import time

    keys = [parse_secret(SECRET, "t"), parse_secret(OTHER, "t")]
    headers = webhook_headers(keys, "msg_2", int(time.time()), b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OTHER):
        Webhook(secret).verify(b"{}", headers, json_parse=False)


def test_signature_of_the_scheme_by_hand() -> None:
    import hashlib
    import hmac

    key = bytes(range(32))
    expected = base64.b64encode(
        hmac.new(key, b"msg_3.1674087231.{}", hashlib.sha256).digest()
    ).decode()
    assert sign(key, "msg_3", 1674087231, b"{}") == f"v1,{expected}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "whsec_"),
        ("whsec_!!!", "base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ],
)
def test_bad_secrets_are_refused_without_echoing_them(text: str, message: str) -> None:
    with pytest.raises(SecretUnavailable, match=message) as caught:
        parse_secret(text, "environment variable X")
    assert text[6:] not in str(caught.value) or len(text) <= 6


def test_secret_references(tmp_path: Path) -> None:
    (tmp_path / "crm.secret").write_text(SECRET + "\n")
    assert load_secrets({"file": "crm.secret"}, tmp_path) == [bytes(range(32))]
    env = {"SEGSTREAM_WEBHOOK_SECRET_CRM": f"{SECRET} {OTHER}"}
    assert len(load_secrets({"env": "SEGSTREAM_WEBHOOK_SECRET_CRM"}, tmp_path, env)) == 2
    with pytest.raises(SecretUnavailable, match="not set"):
        load_secrets({"env": "SEGSTREAM_WEBHOOK_SECRET_NONE"}, tmp_path, {})
    with pytest.raises(SecretUnavailable, match="cannot read"):
        load_secrets({"file": "missing"}, tmp_path)


def test_host_allow_list() -> None:
    policy = OutboundPolicy(("hooks.example.com", "*.crm.example"))
    assert policy.host_allowed("hooks.example.com")
    assert policy.host_allowed("HOOKS.example.com.")
    assert policy.host_allowed("eu.crm.example")
    assert not policy.host_allowed("crm.example")
    assert not policy.host_allowed("evilcrm.example")
    assert not policy.host_allowed("hooks.example.com.evil.org")
    assert not OutboundPolicy().host_allowed("hooks.example.com")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("172.16.5.4", False),
        ("169.254.169.254", False),  # cloud metadata: link-local
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("not an address", False),
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address: str, allowed: bool) -> None:
    assert OutboundPolicy().address_allowed(address) is allowed


def test_networks_can_be_allowed_explicitly() -> None:
    policy = OutboundPolicy.from_env(
        {
            "SEGSTREAM_DELIVER_ALLOWED_HOSTS": "127.0.0.1, localhost",
            "SEGSTREAM_DELIVER_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
    )
    assert policy.address_allowed("127.0.0.5")
    assert policy.address_allowed("::ffff:127.0.0.1")
    assert not policy.address_allowed("10.0.0.1")
    assert policy.url_problems("https://127.0.0.1:8443/x") == []
    (problem,) = OutboundPolicy(("10.0.0.1",)).url_problems("https://10.0.0.1/x")
    assert "not public" in problem.message


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        delay = backoff_delay(attempt, 0.5, 60.0, rng)
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    delays = {round(backoff_delay(3, 0.5, 60.0, rng), 6) for _ in range(20)}
    assert len(delays) > 10  # jitter


def test_retry_after() -> None:
    assert retry_after_seconds("7", 0.0) == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert retry_after_seconds("soon", 0.0) is None
    assert retry_after_seconds(None, 0.0) is None


def destination(**changes: Any) -> dict[str, Any]:
    return {
        "id": "crm",
        "url": "https://hooks.example.com/segstream",
        "secret": {"env": "SEGSTREAM_WEBHOOK_SECRET_CRM"},
        **changes,
    }


def test_versions_and_generations() -> None:
    policy = OutboundPolicy(("hooks.example.com",))
    state = DestinationState()
    created = state.plan_upsert(0, destination(), policy, 0, [5, 7])
    assert (created.outcome, created.version) == ("created", 1)
    assert created.record is not None
    assert created.record["start_offsets"] == [5, 7]
    assert created.record["transitions"] == ["entered", "left"]
    assert created.record["batch"] == {"max_events": 100, "max_linger_ms": 1000}
    same = state.plan_upsert(0, destination(transitions=["entered", "left"]), policy, 1, [9, 9])
    assert (same.outcome, same.version) == ("unchanged", 1)
    changed = state.plan_upsert(0, destination(segments=["vip"]), policy, 2, [9, 9])
    assert (changed.outcome, changed.version) == ("changed", 2)
    assert changed.record is not None
    assert changed.record["created_version"] == 1 and changed.record["start_offsets"] == [5, 7]
    assert state.plan_delete("crm") == {"id": "crm", "deleted": True, "version": 2}
    again = state.plan_upsert(0, destination(), policy, 3, [9, 9])
    assert again.record is not None
    assert (again.version, again.record["created_version"]) == (3, 3)
    refused = state.plan_upsert(0, destination(url="https://elsewhere.org/"), policy, 4, [])
    assert refused.outcome == "rejected" and "allow-list" in refused.problems[0].message


def test_what_is_shown_holds_no_secret_and_no_offsets() -> None:
    state = DestinationState()
    applied = state.plan_upsert(0, destination(), OutboundPolicy(("hooks.example.com",)), 0, [1])
    assert applied.record is not None
    shown = public_view(applied.record)
    assert shown["secret"] == {"env": "SEGSTREAM_WEBHOOK_SECRET_CRM"}
    assert "start_offsets" not in shown and shown["segments"] is None


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        (destination(url="http://hooks.example.com/"), "url", "scheme must be https"),
        (destination(url="https://u:p@hooks.example.com/"), "url", "credentials"),
        (destination(secret={"env": "PATH"}), "secret.env", "pattern"),
        (destination(secret={"file": "../etc/passwd"}), "secret.file", "pattern"),
        (destination(secret={"value": "whsec_x"}), "secret.env", "required"),
        (destination(batch={"max_events": 0}), "batch.max_events", "greater than"),
        (destination(transitions=[]), "transitions", "at least 1"),
        (destination(start="yesterday"), "start", "RFC 3339"),
        (destination(extra=1), "extra", "not a field"),
        ({"id": "crm"}, "url", "required"),
    ],
)
def test_invalid_destinations_name_the_path(raw: Any, path: str, words: str) -> None:
    problems = validate_destination(raw)
    assert path in [p.path for p in problems], problems
    assert any(words in p.message for p in problems if p.path == path), problems


def test_message_ids_and_bodies() -> None:
    record = {"id": "crm", "created_version": 2}
    first = message_id(record, [(0, 1), (1, 5)])
    assert first == message_id(record, [(0, 1), (1, 5)]) and first.startswith("msg_")
    assert first != message_id({**record, "created_version": 3}, [(0, 1), (1, 5)])
    assert "." not in first
    assert batch_body("crm", [b'{"id":"a"}', b'{"id":"b"}']) == (
        b'{"destination_id":"crm","events":[{"id":"a"},{"id":"b"}]}'
    )


def test_metrics_families_and_the_alerts_on_them() -> None:
    import sys

    from segstream.app.deliver.metrics import DELIVER_METRIC_NAMES, DeliverMetrics

    metrics = DeliverMetrics()
    metrics.add_destination("crm")
    text = metrics.render().decode()
    for name in DELIVER_METRIC_NAMES:
        assert f"# TYPE {name} " in text, name
    assert 'segstream_deliver_failing{destination="crm"} 0.0' in text
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
    from deploy_refs import alert_rules, dashboard, metric_names

    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert "segstream_deliver_failing" in metric_names(rules["SegstreamDestinationFailing"]["expr"])
    assert "segstream_deliver_batches_total" in metric_names(
        rules["SegstreamDestinationDeadLetters"]["expr"]
    )
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert "Destinations (segstream deliver)" in rows


def test_the_documented_verifier_accepts_our_signatures() -> None:
    import re
    import time

    doc = (Path(__file__).resolve().parents[3] / "docs" / "destinations.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    (source,) = [block for block in blocks if "def verify(" in block]
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/destinations.md", "exec"), namespace)
    body = b'{"destination_id":"crm","events":[]}'
    headers = webhook_headers([parse_secret(SECRET, "t")], "msg_9", int(time.time()), body)
    assert namespace["verify"](SECRET, headers, body)
    assert not namespace["verify"](OTHER, headers, body)
    assert not namespace["verify"](SECRET, headers, body + b"x")
