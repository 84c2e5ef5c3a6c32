"""One secured Kafka broker per test session: SASL_SSL (SCRAM-SHA-512) and mutual TLS.

The certificates are made here with `openssl` (a throwaway CA, the broker's certificate for
127.0.0.1 and a client certificate); deploy/kafka-local/kafka.sh starts the broker with a
SASL_SSL and an SSL (client certificate required) listener beside its PLAINTEXT one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kafka_broker import KAFKA_SCRIPT, free_ports

SCRAM_USER = "segstream-test"


@dataclass(frozen=True)
class SecuredBroker:
    """Where the secured listeners are and the SEGSTREAM_* settings that reach them."""

    plaintext: str
    sasl_ssl: str
    ssl: str
    tls_dir: Path
    scram_password: str

    def sasl_env(self, password: str | None = None) -> dict[str, str]:
        """Settings for SASL_SSL with SCRAM-SHA-512 (the right password unless one is given)."""
        return {
            "SEGSTREAM_KAFKA_BOOTSTRAP": self.sasl_ssl,
            "SEGSTREAM_SECURITY_PROTOCOL": "SASL_SSL",
            "SEGSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
            "SEGSTREAM_SASL_USERNAME": SCRAM_USER,
            "SEGSTREAM_SASL_PASSWORD": self.scram_password if password is None else password,
            "SEGSTREAM_SSL_CAFILE": str(self.tls_dir / "ca.pem"),
        }

    def mtls_env(self, *, certificate: bool = True) -> dict[str, str]:
        """Settings for SSL with the client certificate (or, to be refused, without one)."""
        env = {
            "SEGSTREAM_KAFKA_BOOTSTRAP": self.ssl,
            "SEGSTREAM_SECURITY_PROTOCOL": "SSL",
            "SEGSTREAM_SSL_CAFILE": str(self.tls_dir / "ca.pem"),
        }
        if certificate:
            env["SEGSTREAM_SSL_CERTFILE"] = str(self.tls_dir / "client.crt")
            env["SEGSTREAM_SSL_KEYFILE"] = str(self.tls_dir / "client.key")
        return env


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def make_certificates(folder: Path) -> None:
    """ca.pem, broker.pem (key + certificate for 127.0.0.1/localhost), client.crt/.key."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=segstream test CA",
        cwd=folder,
    )  # fmt: skip
    for name, extensions in (
        ("broker", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(extensions)
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN=segstream {name}",
            cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=folder,
        )  # fmt: skip
    # Kafka's PEM key store: the private key (PKCS#8, which OpenSSL 3 writes) then the chain.
    (folder / "broker.pem").write_text(
        (folder / "broker.key").read_text() + (folder / "broker.crt").read_text()
    )


def start_secured_broker(folder: Path) -> Iterator[SecuredBroker]:
    """kafka.sh with the secured listeners on free ports; stopped when the generator closes."""
    if shutil.which("java") is None or shutil.which("openssl") is None:
        pytest.skip("the secured broker needs java and openssl")
    tls_dir = folder / "tls"
    make_certificates(tls_dir)
    password = secrets.token_urlsafe(18)
    port, controller, sasl_port, ssl_port = free_ports(4)
    env = {
        "SEGSTREAM_KAFKA_DATA": str(folder / "data"),
        "SEGSTREAM_KAFKA_PORT": str(port),
        "SEGSTREAM_KAFKA_CONTROLLER_PORT": str(controller),
        "SEGSTREAM_KAFKA_TLS_DIR": str(tls_dir),
        "SEGSTREAM_KAFKA_SASL_SSL_PORT": str(sasl_port),
        "SEGSTREAM_KAFKA_SSL_PORT": str(ssl_port),
        "SEGSTREAM_KAFKA_SCRAM_USER": f"{SCRAM_USER}:{password}",
    }
    full_env = {**os.environ, **env}
    started = subprocess.run(
        ["bash", str(KAFKA_SCRIPT), "start"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"kafka.sh start (secured) failed:\n{started.stderr}")
        yield SecuredBroker(
            plaintext=f"127.0.0.1:{port}",
            sasl_ssl=f"127.0.0.1:{sasl_port}",
            ssl=f"127.0.0.1:{ssl_port}",
            tls_dir=tls_dir,
            scram_password=password,
        )
    finally:
        subprocess.run(
            ["bash", str(KAFKA_SCRIPT), "stop"],
            env=full_env,
            capture_output=True,
            check=False,
            timeout=60,
        )


@pytest.fixture(scope="session")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """The session's secured broker (started on first use)."""
    yield from start_secured_broker(tmp_path_factory.mktemp("secured-kafka"))
