"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

Secrets are `whsec_` + base64 of 24 to 64 random bytes. A secret reference names an
environment variable (`SEGSTREAM_WEBHOOK_SECRET_*`) or a file in the secrets folder; the file
or variable may hold several secrets separated by spaces (during a rotation), and each
signs: the receiver accepts the request when any signature verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segstream.errors import SegstreamError

__all__ = ["SecretUnavailable", "load_secrets", "parse_secret", "sign", "webhook_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class SecretUnavailable(SegstreamError):
    """A destination's secret reference cannot be read or does not hold a valid secret.

    The message names the reference, never the secret's value.
    """


def parse_secret(text: str, where: str) -> bytes:
    """The key bytes of one `whsec_...` secret."""
    if not text.startswith(SECRET_PREFIX):
        raise SecretUnavailable(f"{where} does not hold a secret of the form whsec_<base64>")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SecretUnavailable(f"{where}: the secret is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretUnavailable(
            f"{where}: a secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}"
        )
    return key


def load_secrets(
    reference: Mapping[str, Any], secrets_dir: Path, environ: Mapping[str, str] | None = None
) -> list[bytes]:
    """The key(s) a reference points to, read now (so a rotated secret is picked up)."""
    env = os.environ if environ is None else environ
    if "env" in reference:
        name = str(reference["env"])
        where = f"environment variable {name}"
        text = env.get(name)
        if text is None:
            raise SecretUnavailable(f"{where} is not set in the deliver process")
    else:
        name = str(reference["file"])
        path = secrets_dir / name
        where = f"secret file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretUnavailable(f"cannot read {where}: {type(exc).__name__}") from None
    parts = text.split()
    if not parts:
        raise SecretUnavailable(f"{where} is empty")
    return [parse_secret(part, where) for part in parts]


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One signature, `v1,<base64>`."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, message_id, timestamp, body) for key in keys),
    }
