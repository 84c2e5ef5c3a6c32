"""`segstream members ID`: every current member of a segment, from a worker's export API."""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Any

import click

from segstream.cli.segments import load_settings

__all__ = ["members"]

_CHUNK = 64 * 1024


@click.command()
@click.argument("segment_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV (RFC 4180, a header line) or one JSON object a line.",
)
@click.option("--traits", default="", help="Comma-separated trait paths to add, e.g. name,tier.")
@click.option(
    "--api",
    "api_url",
    envvar="SEGSTREAM_API_URL",
    default=None,
    help="A worker's URL (default $SEGSTREAM_API_URL, else this machine's SEGSTREAM_WEB_PORT).",
)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to FILE.")
def members(segment_id: str, fmt: str, traits: str, api_url: str | None, out: str | None) -> None:
    """Export the members of segment ID (profile id, entered at, the traits asked for).

    Any worker answers for all partitions. The token is SEGSTREAM_API_READ_TOKEN, else
    SEGSTREAM_API_TOKEN (or their _FILE forms). Exit status 1 when the export failed or was
    cut off; what was written until then is then incomplete.
    """
    settings = load_settings()
    base = api_url or f"http://127.0.0.1:{settings.web_port}"
    token = settings.api_read_token or settings.api_token
    url = f"{base.rstrip('/')}/api/segments/{segment_id}/members.{fmt}"
    if out is None:
        asyncio.run(_download(url, traits, token, sys.stdout.buffer))
        return
    with open(out, "wb") as target:
        asyncio.run(_download(url, traits, token, target))


async def _download(url: str, traits: str, token: str | None, target: IO[bytes]) -> None:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"traits": traits} if traits else {}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params=params, headers=headers) as response,
        ):
            if response.status != 200:
                raise click.ClickException(_error(response.status, await response.read()))
            async for chunk in response.content.iter_chunked(_CHUNK):
                target.write(chunk)
    except aiohttp.ClientPayloadError as exc:
        message = f"the export was cut off, the output is incomplete: {exc}"
        raise click.ClickException(message) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise click.ClickException(f"cannot reach the API at {url}: {exc}") from None
    target.flush()


def _error(status: int, body: bytes) -> str:
    from segstream.schemas.jsontext import loads_exact

    try:
        decoded: Any = loads_exact(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return f"HTTP {status} {decoded.get('code', '')}: {decoded['message']}"
    return f"HTTP {status}"
