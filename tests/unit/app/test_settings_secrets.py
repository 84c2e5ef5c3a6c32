"""Settings that guard the API and the Kafka credentials: reprs, files, exposure."""

from __future__ import annotations

from pathlib import Path

import pytest

from segstream.app.settings import SettingsError, WorkerSettings

SECRETS = {
    "SEGSTREAM_API_TOKEN": "tok-admin-1",
    "SEGSTREAM_API_READ_TOKEN": "tok-read-2",
    "SEGSTREAM_API_PEER_TOKEN": "tok-peer-3",
    "SEGSTREAM_SASL_PASSWORD": "sasl-pw-4",
}


def test_no_secret_in_the_repr() -> None:
    settings = WorkerSettings.from_env(
        {**SECRETS, "SEGSTREAM_SECURITY_PROTOCOL": "SASL_SSL", "SEGSTREAM_SASL_USERNAME": "u"}
    )
    text = repr(settings) + str(settings) + repr(settings.security)
    for value in SECRETS.values():
        assert value not in text
    assert settings.security.sasl_password == "sasl-pw-4"
    assert settings.peer_token == "tok-peer-3"


def test_secrets_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    settings = WorkerSettings.from_env({"SEGSTREAM_API_TOKEN_FILE": str(token)})
    assert settings.api_token == "from-a-file"
    with pytest.raises(SettingsError, match="not both"):
        WorkerSettings.from_env(
            {"SEGSTREAM_API_TOKEN_FILE": str(token), "SEGSTREAM_API_TOKEN": "x"}
        )
    with pytest.raises(SettingsError, match="cannot read") as error:
        WorkerSettings.from_env({"SEGSTREAM_SASL_PASSWORD_FILE": str(tmp_path / "missing")})
    assert "from-a-file" not in str(error.value)


def test_tokens_must_differ_and_the_extra_ones_need_the_api_token() -> None:
    with pytest.raises(SettingsError, match="differ"):
        WorkerSettings.from_env({"SEGSTREAM_API_TOKEN": "a", "SEGSTREAM_API_READ_TOKEN": "a"})
    with pytest.raises(SettingsError, match="need"):
        WorkerSettings.from_env({"SEGSTREAM_API_READ_TOKEN": "a"})
    derived = WorkerSettings.from_env({"SEGSTREAM_API_TOKEN": "a"}).peer_token
    assert derived is not None and derived != "a"
    assert WorkerSettings.from_env({}).peer_token is None


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, False),
        ({"SEGSTREAM_WEB_HOST": "localhost"}, False),
        ({"SEGSTREAM_WEB_HOST": "::1"}, False),
        ({"SEGSTREAM_WEB_HOST": "0.0.0.0"}, True),
        ({"SEGSTREAM_WEB_HOST": "10.1.2.3"}, True),
        ({"SEGSTREAM_WEB_HOST": "0.0.0.0", "SEGSTREAM_API_TOKEN": "t"}, False),
        ({"SEGSTREAM_WEB_HOST": "0.0.0.0", "SEGSTREAM_WEB_INSECURE": "1"}, False),
        ({"SEGSTREAM_WEB_HOST": "0.0.0.0", "SEGSTREAM_WEB_ENABLED": "0"}, False),
    ],
)
def test_a_non_loopback_bind_needs_a_token(env: dict[str, str], refused: bool) -> None:
    problem = WorkerSettings.from_env(env).web_exposure_problem()
    assert (problem is not None) is refused
    if problem:
        assert "SEGSTREAM_API_TOKEN" in problem and "SEGSTREAM_WEB_INSECURE" in problem


@pytest.mark.parametrize(
    "url",
    ["http://user:pw@w1:6066", "ftp://w1", "http://w1:6066/path", "http://w1:6066?x=1", "w1:6066"],
)
def test_advertised_url_is_plain(url: str) -> None:
    with pytest.raises(SettingsError, match="WEB_ADVERTISE") as error:
        WorkerSettings.from_env({"SEGSTREAM_WEB_ADVERTISE": url})
    assert "pw" not in str(error.value)


def test_failure_hints_name_the_settings() -> None:
    sasl = WorkerSettings.from_env({"SEGSTREAM_SECURITY_PROTOCOL": "SASL_SSL"})
    assert "SEGSTREAM_SASL_PASSWORD" in sasl.security.failure_hint()
    mtls = WorkerSettings.from_env({"SEGSTREAM_SECURITY_PROTOCOL": "SSL"})
    assert "SEGSTREAM_SSL_CERTFILE" in mtls.security.failure_hint()
