"""`segstream worker --runtime faust`: usage errors before anything touches Kafka."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from segstream.app.settings import SettingsError
from segstream.cli import main
from segstream.faust_runtime.settings import FaustSettings


def test_without_the_extra_the_runtime_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faust", None)  # `import faust` raises ImportError
    result = CliRunner().invoke(main, ["worker", "--runtime", "faust"])
    assert result.exit_code == 2, result.output
    assert "pip install 'segstream[faust]'" in result.output


def test_settings_shared_and_own() -> None:
    settings = FaustSettings.from_env(
        {"SEGSTREAM_TOPIC_PREFIX": "shop", "SEGSTREAM_FAUST_COMMIT_INTERVAL_S": "2.5"}
    )
    assert settings.app_id == "shop-faust"
    assert settings.control_topic == "shop.faust-control"
    assert settings.commit_interval_s == 2.5
    assert settings.worker.topics.membership == "shop.membership"
    assert settings.changelogs == ("shop-faust-profiles-changelog", "shop-faust-meta-changelog")


@pytest.mark.parametrize(
    ("name", "value"),
    [("SEGSTREAM_SECURITY_PROTOCOL", "SASL_SSL"), ("SEGSTREAM_FAUST_COMMIT_INTERVAL_S", "0")],
)
def test_refused_settings_name_the_variable(name: str, value: str) -> None:
    env = {name: value}
    if value == "SASL_SSL":
        env.update(
            SEGSTREAM_SASL_MECHANISM="SCRAM-SHA-512",
            SEGSTREAM_SASL_USERNAME="u",
            SEGSTREAM_SASL_PASSWORD="p",
        )
    with pytest.raises(SettingsError, match=name if value == "0" else "PLAINTEXT"):
        FaustSettings.from_env(env)
