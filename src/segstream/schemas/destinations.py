"""Pydantic models of webhook destinations and destinations-topic records (docs/destinations.md).

The source of truth for destination-definition.schema.json and destination-record.schema.json.
`validate_destination` turns the model's errors into Problems with JSON paths and adds the
checks a schema cannot express (the URL's parts). Whether the host is allowed is the
operator's setting and is checked in the shell (`segstream.app.outbound`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, StrictInt, StrictStr, StringConstraints, Tag
from pydantic import ValidationError as PydanticValidationError

from segstream.errors import Problem
from segstream.schemas.types import InstantText, SegmentIdText, StrictModel

__all__ = [
    "DEFAULT_LINGER_MS",
    "DEFAULT_MAX_EVENTS",
    "DESTINATION_FIELDS",
    "DestinationDefinition",
    "DestinationDeletion",
    "DestinationRecord",
    "DestinationVersion",
    "EnvSecret",
    "FileSecret",
    "validate_destination",
]

DEFAULT_MAX_EVENTS = 100
DEFAULT_LINGER_MS = 1000
MAX_URL_LENGTH = 2048
#: Fields of a definition as submitted (the writer adds the rest).
DESTINATION_FIELDS = ("id", "url", "segments", "transitions", "batch", "secret", "start")

# The name of an environment variable that holds a signing secret. The prefix keeps an API
# caller from pointing a destination at any other variable of the deliver process.
SECRET_ENV_PATTERN = r"^SEGSTREAM_WEBHOOK_SECRET_[A-Z0-9_]{1,64}$"  # noqa: S105 - a name pattern
# A file name inside the operator's secrets folder (no path, so nothing outside it).
SECRET_FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # noqa: S105 - a name pattern


class EnvSecret(StrictModel):
    """The signing secret is in this environment variable of the deliver process."""

    env: Annotated[StrictStr, StringConstraints(pattern=SECRET_ENV_PATTERN)]


class FileSecret(StrictModel):
    """The signing secret is in this file of the deliver process's secrets folder."""

    file: Annotated[StrictStr, StringConstraints(pattern=SECRET_FILE_PATTERN)]


def _secret_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "file" if "file" in value else "env"
    return "file" if isinstance(value, FileSecret) else "env"


SecretRef = Annotated[
    Annotated[EnvSecret, Tag("env")] | Annotated[FileSecret, Tag("file")],
    Discriminator(_secret_kind),
]


class Batching(StrictModel):
    """How events are grouped into one POST: at most `max_events`, waiting `max_linger_ms`."""

    max_events: Annotated[StrictInt, Field(ge=1, le=1000)] = DEFAULT_MAX_EVENTS
    max_linger_ms: Annotated[StrictInt, Field(ge=0, le=60_000)] = DEFAULT_LINGER_MS


Transition = Literal["entered", "left"]
Start = Annotated[
    Literal["creation", "earliest"] | InstantText,
    Field(
        description=(
            "Where a new destination starts reading the membership topic: 'creation' (what is "
            "committed after it was created), 'earliest', or an instant (by record timestamp)"
        )
    ),
]


class DestinationDefinition(StrictModel):
    """A webhook destination as submitted to the API or `segstream destinations apply`."""

    id: SegmentIdText
    url: Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
    #: The segments whose transitions it gets; absent or null: every segment.
    segments: Annotated[list[SegmentIdText], Field(min_length=1, max_length=1000)] | None = None
    transitions: Annotated[
        list[Transition],
        Field(min_length=1, max_length=2, default_factory=lambda: ["entered", "left"]),
    ]
    batch: Batching = Batching()
    secret: SecretRef
    start: Start = "creation"

    nullable = frozenset({"segments"})


class DestinationVersion(DestinationDefinition):
    """A destination on the destinations topic, with what the writer assigned."""

    version: Annotated[StrictInt, Field(ge=1)]
    #: The version at which this destination was (re-)created; names its consumer group.
    created_version: Annotated[StrictInt, Field(ge=1)]
    created_at: InstantText
    #: With start 'creation': the membership topic's end offsets (read_committed) per partition
    #: when the destination was created.
    start_offsets: list[Annotated[StrictInt, Field(ge=0)]] | None = None


class DestinationDeletion(StrictModel):
    """A deletion on the destinations topic; it keeps the last version so none is reused."""

    id: SegmentIdText
    deleted: Literal[True]
    version: Annotated[StrictInt, Field(ge=1)]


def _record_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "deleted" if "deleted" in value else "destination"
    return "deleted" if isinstance(value, DestinationDeletion) else "destination"


DestinationRecord = Annotated[
    Annotated[DestinationVersion, Tag("destination")]
    | Annotated[DestinationDeletion, Tag("deleted")],
    Discriminator(_record_kind),
]
"""A record value of the destinations topic."""


def validate_destination(raw: object, *, allow_http: bool = False) -> list[Problem]:
    """Every problem of a submitted destination, each with its JSON path (empty: valid)."""
    try:
        model = DestinationDefinition.model_validate(raw)
    except PydanticValidationError as exc:
        problems: list[Problem] = []
        for error in exc.errors():
            found = _problem(error)
            if found not in problems:
                problems.append(found)
        return problems
    return _url_problems(model.url, allow_http)


def _problem(error: Any) -> Problem:
    loc: tuple[int | str, ...] = error["loc"]
    if loc[:1] == ("start",):
        # One message for the union, not one per alternative.
        return Problem("start", "must be 'creation', 'earliest' or an RFC 3339 date-time")
    if loc[:1] == ("secret",) and len(loc) > 1:
        loc = ("secret", *loc[2:])  # drop the discriminator's tag (env or file)
    if loc == ("secret",) and error["type"] != "missing":
        return Problem("secret", 'must be {"env": NAME} or {"file": NAME}')
    return Problem(_path(loc), _message(error))


def _url_problems(url: str, allow_http: bool) -> list[Problem]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return [Problem("url", f"not a URL: {exc}")]
    schemes = ("https", "http") if allow_http else ("https",)
    problems = []
    if parts.scheme not in schemes:
        allowed = " or ".join(schemes)
        problems.append(Problem("url", f"the scheme must be {allowed}, not '{parts.scheme}'"))
    if not parts.hostname:
        problems.append(Problem("url", "the URL has no host"))
    if parts.username is not None or parts.password is not None:
        problems.append(Problem("url", "credentials in the URL are not allowed"))
    if parts.fragment:
        problems.append(Problem("url", "the URL may not have a fragment"))
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        problems.append(Problem("url", "the URL must be printable ASCII (encode it)"))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Any) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a field of a destination"
    return str(error["msg"])
