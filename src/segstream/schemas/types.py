"""Annotated field types shared by the pydantic models (texts checked by segstream.timefmt)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Self, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from segstream.schemas.vocabulary import ACTIVITY_TYPES, SEGMENT_ID_PATTERN
from segstream.timefmt import parse_date, parse_datetime, parse_duration, parse_instant

__all__ = [
    "ActivityType",
    "DateText",
    "DateTimeText",
    "DurationText",
    "InstantText",
    "Number",
    "PathText",
    "SegmentIdText",
    "StrictModel",
    "TraitValue",
    "dotted_key",
]


def _checked_by(parse: Any) -> Any:
    def check(text: str) -> str:
        parse(text)
        return text

    return AfterValidator(check)


DateTimeText = Annotated[
    StrictStr, _checked_by(parse_datetime), Field(json_schema_extra={"format": "date-time"})
]
DateText = Annotated[
    StrictStr, _checked_by(parse_date), Field(json_schema_extra={"format": "date"})
]
InstantText = Annotated[
    StrictStr,
    _checked_by(parse_instant),
    Field(
        description="A date (YYYY-MM-DD, meaning 00:00:00Z) or an RFC 3339 date-time with a zone",
        json_schema_extra={"anyOf": [{"format": "date"}, {"format": "date-time"}]},
    ),
]
DurationText = Annotated[
    StrictStr,
    _checked_by(parse_duration),
    Field(pattern=r"^[0-9]*[1-9][0-9]*[smhdw]$", description="A positive whole number and a unit"),
]
# Finite JSON numbers; booleans are not numbers (strict mode).
Number = Annotated[float, Field(allow_inf_nan=False)]
PathText = Annotated[StrictStr, StringConstraints(pattern=r"^[^.]+(\.[^.]+)*$")]
SegmentIdText = Annotated[StrictStr, StringConstraints(pattern=SEGMENT_ID_PATTERN)]
_ACTIVITY_PATTERN: Final = (
    "^(" + "|".join(t.replace(".", r"\.") for t in ACTIVITY_TYPES) + r"|custom\.[a-z0-9_.-]{1,64})$"
)
ActivityType = Annotated[StrictStr, StringConstraints(pattern=_ACTIVITY_PATTERN)]


def dotted_key(value: object) -> str | None:
    """The first object key containing '.', at any depth (through arrays too), or None."""
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(key, str) and "." in key:
                return key
            found = dotted_key(child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for child in value:
            found = dotted_key(child)
            if found is not None:
                return found
    return None


class _NoOtherKeys:
    """Marks an object schema whose keys must all match its `patternProperties`."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["additionalProperties"] = False
        return schema


_DotlessKey = Annotated[str, StringConstraints(pattern=r"^[^.]*$")]

# Any JSON value whose object keys (at any depth) contain no '.', as trait values must.
# mypy cannot follow a recursive TypeAliasType before Python 3.12's `type` statement.
if TYPE_CHECKING:
    TraitValue = Any
else:
    TraitValue = TypeAliasType(
        "TraitValue",
        Union[  # noqa: UP007 - a recursive alias needs the Union spelled out for pydantic
            StrictBool,
            StrictInt,
            StrictFloat,
            StrictStr,
            list["TraitValue"],
            Annotated[dict[_DotlessKey, "TraitValue"], _NoOtherKeys()],
            None,
        ],
    )


class StrictModel(BaseModel):
    """Base of the wire models: strict types, no unknown keys, explicit nulls only where allowed."""

    model_config = ConfigDict(strict=True, extra="forbid")
    # Fields that may be sent as an explicit `null`; the others may only be omitted.
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_explicit_null(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"'{name}' may be omitted but not null")
        return self
