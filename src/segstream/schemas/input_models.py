"""Pydantic models of input events (SPEC §3): the source of truth for input-event.schema.json."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    StrictStr,
    StringConstraints,
    Tag,
    model_validator,
)

from segstream.schemas.types import (
    ActivityType,
    DateText,
    DateTimeText,
    Number,
    StrictModel,
    TraitValue,
    dotted_key,
)

__all__ = [
    "ActivityEvent",
    "Context",
    "Device",
    "InputEventModel",
    "Location",
    "ProfileDeleted",
    "ProfileUpdated",
    "Traits",
]

# Values that are not objects: a non-object `location` or `device` trait is a custom value.
_NonObject = bool | int | float | str | list[TraitValue]


class _DotlessModel(StrictModel):
    """An open object (extra keys kept) whose keys contain no '.' at any depth."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"propertyNames": {"pattern": "^[^.]*$"}}
    )
    __pydantic_extra__: dict[str, TraitValue]

    @model_validator(mode="before")
    @classmethod
    def _no_dotted_keys(cls, data: Any) -> Any:
        found = dotted_key(data)
        if found is not None:
            raise ValueError(f"key {found!r} contains '.', which separates trait paths")
        return data

    @model_validator(mode="after")
    def _no_explicit_null(self) -> Self:
        # In traits, `null` is meaningful everywhere: it deletes the key.
        return self


class Device(_DotlessModel):
    """The `device` trait and `context.device`: type, brand, os."""

    type: Literal["desktop", "mobile", "tablet"] | None = None
    brand: StrictStr | None = None
    os: StrictStr | None = None


class Location(_DotlessModel):
    """The `location` trait: city, region, country, lat, lon."""

    city: StrictStr | None = None
    region: StrictStr | None = None
    country: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    lat: Annotated[Number, Field(ge=-90, le=90)] | None = None
    lon: Annotated[Number, Field(ge=-180, le=180)] | None = None


class Traits(_DotlessModel):
    """Profile traits: the standard traits of SPEC §3.1 have fixed forms; other keys are free."""

    gender: StrictStr | None = None
    birthdate: DateText | None = None
    age: Annotated[Number, Field(ge=0)] | None = None
    location: Location | _NonObject | None = None
    device: Device | _NonObject | None = None
    mobile_operator: StrictStr | None = None
    subscription_source: (
        Literal[
            "qr_code",
            "shareable_link",
            "form",
            "checkout_opt_in",
            "capture",
            "channel",
            "short_code",
            "api",
            "import",
        ]
        | None
    ) = None


class Context(StrictModel):
    """The optional `context` object; only `device` is read."""

    model_config = ConfigDict(extra="allow")
    nullable: ClassVar[frozenset[str]] = frozenset({"device"})
    device: Device | None = None


class _InputEventBase(StrictModel):
    """Fields every input event has; other top-level fields are ignored (SPEC §3)."""

    model_config = ConfigDict(extra="ignore")
    nullable: ClassVar[frozenset[str]] = frozenset({"context", "properties"})
    id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]
    profile_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
    at: DateTimeText
    context: Context | None = None


class ProfileUpdated(_InputEventBase):
    """`profile.updated`: traits deep-merged into the profile (`null` deletes a key)."""

    type: Literal["profile.updated"]
    traits: Traits


class ProfileDeleted(_InputEventBase):
    """`profile.deleted`: forgets the profile."""

    type: Literal["profile.deleted"]


class ActivityEvent(_InputEventBase):
    """An activity (SPEC §3.2): a standard type or `custom.<name>`, with free-form properties."""

    type: ActivityType
    properties: dict[str, Any] | None = None


def _event_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("profile.updated", "profile.deleted"):
        return str(kind)
    return "activity"


InputEventModel = Annotated[
    Annotated[ProfileUpdated, Tag("profile.updated")]
    | Annotated[ProfileDeleted, Tag("profile.deleted")]
    | Annotated[ActivityEvent, Tag("activity")],
    Discriminator(_event_kind),
]
"""Any input event; validate with `TypeAdapter(InputEventModel)`."""
