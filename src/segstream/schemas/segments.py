"""Pydantic models of segment definitions and segments-topic records (SPEC §4, §4.1-§4.3).

The source of truth for segment-definition.schema.json and segment-record.schema.json.
`segstream.rules.validate_definition` checks the same rules by hand, to report every problem
at its JSON path in words a marketer understands; a test keeps the two in agreement.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from segstream.rules.patterns import MAX_PATTERN_LENGTH, pattern_problem
from segstream.schemas.types import (
    ActivityType,
    DurationText,
    InstantText,
    Number,
    PathText,
    SegmentIdText,
    StrictModel,
)

__all__ = [
    "MAX_DEPTH",
    "AndCondition",
    "Condition",
    "CountMeasure",
    "DeletionMarker",
    "EventCondition",
    "NotCondition",
    "OrCondition",
    "PropertyCondition",
    "SegmentCondition",
    "SegmentDefinition",
    "SegmentRecord",
    "SegmentVersion",
    "SequenceCondition",
    "SequenceStep",
    "TimeWindow",
    "TraitCondition",
]

MAX_DEPTH = 10
MAX_CHILDREN = 100

Scalar = StrictStr | StrictBool | Number
# [lo, hi]: a list rather than a tuple, since strict mode accepts only real tuples as tuples.
NumberPair = Annotated[list[Number], Field(min_length=2, max_length=2)]
Count = Annotated[StrictInt, Field(ge=0)]
CountPair = Annotated[list[Count], Field(min_length=2, max_length=2)]


def _valid_pattern(text: str) -> str:
    problem = pattern_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _anniversary_span(text: str) -> str:
    if text[-1] not in "dw" or int(text[:-1]) * (7 if text[-1] == "w" else 1) > 366:
        raise ValueError("an anniversary period is 1 to 366 days, written in days or weeks")
    return text


#: An RE2 pattern (SPEC §4.4): at most 1,000 code points, one that RE2 compiles.
PatternText = Annotated[
    StrictStr,
    StringConstraints(max_length=MAX_PATTERN_LENGTH),
    AfterValidator(_valid_pattern),
    Field(description="An RE2 pattern (google-re2 1.1 syntax, default options)"),
]
#: 1 to 366 days, written in days or weeks.
AnniversarySpan = Annotated[
    DurationText,
    AfterValidator(_anniversary_span),
    Field(pattern=r"^[0-9]*[1-9][0-9]*[dw]$", description="1 to 366 days, in d or w"),
]


class NearPoint(StrictModel):
    """The operand of `near`: a point and a radius in kilometres (> 0)."""

    lat: Number
    lon: Number
    km: Annotated[Number, Field(gt=0)]


# Operand families (SPEC §4.2): each pairs the operators that take the same kind of value.
class _Leaf(StrictModel):
    """Fields of every trait/property condition."""

    ignore_case: StrictBool = False


class _EqualityOperand(_Leaf):
    op: Literal["eq", "neq"]
    value: Scalar


class _MembershipOperand(_Leaf):
    op: Literal["in", "not_in"]
    value: Annotated[list[Scalar], Field(min_length=1)]


class _NumberOperand(_Leaf):
    op: Literal["gt", "gte", "lt", "lte"]
    value: Number


class _RangeOperand(_Leaf):
    op: Literal["between"]
    value: NumberPair

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.value[0] > self.value[1]:
            raise ValueError("between needs [lo, hi] with lo <= hi")
        return self


class _ContainsOperand(_Leaf):
    op: Literal["contains"]
    value: Scalar


class _AffixOperand(_Leaf):
    op: Literal["starts_with", "ends_with"]
    value: StrictStr


class _InstantOperand(_Leaf):
    op: Literal["before", "after"]
    value: InstantText


class _DurationOperand(_Leaf):
    op: Literal["within_last", "more_than_ago"]
    value: DurationText


class _UpcomingOperand(_Leaf):
    op: Literal["within_next"]
    value: DurationText


class _AnniversaryOperand(_Leaf):
    op: Literal["anniversary_within_next", "anniversary_within_last"]
    value: AnniversarySpan


class _PatternOperand(_Leaf):
    op: Literal["matches"]
    value: PatternText


class _NearOperand(_Leaf):
    op: Literal["near"]
    value: NearPoint


class _PresenceOperand(_Leaf):
    op: Literal["exists", "not_exists"]


class _OnTrait(StrictModel):
    trait: PathText


class _OnProperty(StrictModel):
    property: PathText


class TraitEquality(_OnTrait, _EqualityOperand):
    """Trait `eq`/`neq` a text, number or boolean."""


class TraitMembership(_OnTrait, _MembershipOperand):
    """Trait `in`/`not_in` a non-empty list."""


class TraitNumber(_OnTrait, _NumberOperand):
    """Trait `gt gte lt lte` a number."""


class TraitRange(_OnTrait, _RangeOperand):
    """Trait `between` [lo, hi]."""


class TraitContains(_OnTrait, _ContainsOperand):
    """Trait `contains` a substring or element."""


class TraitAffix(_OnTrait, _AffixOperand):
    """Trait `starts_with`/`ends_with` a text."""


class TraitInstant(_OnTrait, _InstantOperand):
    """Trait `before`/`after` a date or date-time."""


class TraitDuration(_OnTrait, _DurationOperand):
    """Trait `within_last`/`more_than_ago` a duration."""


class TraitNear(_OnTrait, _NearOperand):
    """Trait `near` a point."""


class TraitPresence(_OnTrait, _PresenceOperand):
    """Trait `exists`/`not_exists` (no value)."""


class TraitUpcoming(_OnTrait, _UpcomingOperand):
    """Trait `within_next` a duration."""


class TraitAnniversary(_OnTrait, _AnniversaryOperand):
    """Trait `anniversary_within_next`/`_last` 1 to 366 days."""


class TraitPattern(_OnTrait, _PatternOperand):
    """Trait `matches` an RE2 pattern."""


class PropertyEquality(_OnProperty, _EqualityOperand):
    """Property `eq`/`neq` a text, number or boolean."""


class PropertyMembership(_OnProperty, _MembershipOperand):
    """Property `in`/`not_in` a non-empty list."""


class PropertyNumber(_OnProperty, _NumberOperand):
    """Property `gt gte lt lte` a number."""


class PropertyRange(_OnProperty, _RangeOperand):
    """Property `between` [lo, hi]."""


class PropertyContains(_OnProperty, _ContainsOperand):
    """Property `contains` a substring or element."""


class PropertyAffix(_OnProperty, _AffixOperand):
    """Property `starts_with`/`ends_with` a text."""


class PropertyInstant(_OnProperty, _InstantOperand):
    """Property `before`/`after` a date or date-time."""


class PropertyDuration(_OnProperty, _DurationOperand):
    """Property `within_last`/`more_than_ago` a duration."""


class PropertyNear(_OnProperty, _NearOperand):
    """Property `near` a point."""


class PropertyPresence(_OnProperty, _PresenceOperand):
    """Property `exists`/`not_exists` (no value)."""


class PropertyUpcoming(_OnProperty, _UpcomingOperand):
    """Property `within_next` a duration."""


class PropertyAnniversary(_OnProperty, _AnniversaryOperand):
    """Property `anniversary_within_next`/`_last` 1 to 366 days."""


class PropertyPattern(_OnProperty, _PatternOperand):
    """Property `matches` an RE2 pattern."""


TraitCondition = Annotated[
    TraitEquality
    | TraitMembership
    | TraitNumber
    | TraitRange
    | TraitContains
    | TraitAffix
    | TraitInstant
    | TraitDuration
    | TraitNear
    | TraitPresence
    | TraitUpcoming
    | TraitAnniversary
    | TraitPattern,
    Field(discriminator="op"),
]
PropertyCondition = Annotated[
    PropertyEquality
    | PropertyMembership
    | PropertyNumber
    | PropertyRange
    | PropertyContains
    | PropertyAffix
    | PropertyInstant
    | PropertyDuration
    | PropertyNear
    | PropertyPresence
    | PropertyUpcoming
    | PropertyAnniversary
    | PropertyPattern,
    Field(discriminator="op"),
]

MeasureOperator = Literal["eq", "neq", "gt", "gte", "lt", "lte", "between"]


class TimeWindow(StrictModel):
    """`within` as `{after, before}`: `after <= at < before`; at least one side."""

    after: InstantText | SkipJsonSchema[None] = None
    before: InstantText | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if self.after is None and self.before is None:
            raise ValueError("a window needs 'after', 'before' or both")
        return self


class CountMeasure(StrictModel):
    """`count`: how many selected events, compared with a whole number >= 0."""

    op: MeasureOperator
    value: Count | CountPair

    @model_validator(mode="after")
    def _shape(self) -> Self:
        _check_measure_value(self.op, self.value)
        return self


def _check_measure_value(op: str, value: object) -> None:
    if (op == "between") != isinstance(value, list):
        raise ValueError("'between' takes [lo, hi]; the other operators take one number")
    if isinstance(value, list) and value[0] > value[1]:
        raise ValueError("between needs [lo, hi] with lo <= hi")


class NotFollowedBy(StrictModel):
    """`not_followed_by`: no event of this type (and `where`) within D after the first one."""

    event: ActivityType
    where: list[PropertyCondition] | SkipJsonSchema[None] = None
    within: DurationText


class EventCondition(StrictModel):
    """Activity events of one type, filtered by `where` and `within`, measured once."""

    event: ActivityType
    where: list[PropertyCondition] | SkipJsonSchema[None] = None
    within: DurationText | TimeWindow | SkipJsonSchema[None] = None
    count: CountMeasure | SkipJsonSchema[None] = None
    sum: PathText | SkipJsonSchema[None] = None
    avg: PathText | SkipJsonSchema[None] = None
    min: PathText | SkipJsonSchema[None] = None
    max: PathText | SkipJsonSchema[None] = None
    op: MeasureOperator | SkipJsonSchema[None] = None
    value: Number | NumberPair | SkipJsonSchema[None] = None
    not_followed_by: NotFollowedBy | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _one_measure(self) -> Self:
        measures = [
            m for m in ("count", "sum", "avg", "min", "max") if getattr(self, m) is not None
        ]
        if self.not_followed_by is not None and (
            measures or self.op is not None or self.value is not None
        ):
            raise ValueError("an event with 'not_followed_by' takes no measure")
        if len(measures) > 1:
            raise ValueError("at most one measure per condition")
        aggregate = measures and measures[0] != "count"
        if not aggregate:
            if self.op is not None or self.value is not None:
                raise ValueError("top-level 'op' and 'value' go with sum, avg, min or max")
            return self
        if self.op is None or self.value is None:
            raise ValueError("sum, avg, min and max need 'op' and 'value'")
        _check_measure_value(self.op, self.value)
        return self


class SequenceStep(StrictModel):
    """One step of a sequence: an event type and its `where` (no window, no measure)."""

    event: ActivityType
    where: list[PropertyCondition] | SkipJsonSchema[None] = None


class SequenceCondition(StrictModel):
    """2 to 10 steps, each matched by a later event than the one before (SPEC §4.4)."""

    sequence: Annotated[list[SequenceStep], Field(min_length=2, max_length=10)]
    within: DurationText | TimeWindow | SkipJsonSchema[None] = None


class SegmentCondition(StrictModel):
    """True while the profile is a member of the referenced segment (for at least D)."""

    segment: SegmentIdText
    for_at_least: DurationText | SkipJsonSchema[None] = None


class AndCondition(StrictModel):
    """All of 1 to 100 conditions."""

    and_: Annotated[list[Condition], Field(alias="and", min_length=1, max_length=MAX_CHILDREN)]


class OrCondition(StrictModel):
    """Any of 1 to 100 conditions."""

    or_: Annotated[list[Condition], Field(alias="or", min_length=1, max_length=MAX_CHILDREN)]


class NotCondition(StrictModel):
    """The negation of one condition."""

    not_: Annotated[Condition, Field(alias="not")]


_KINDS = ("and", "or", "not", "trait", "event", "sequence", "segment")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((kind for kind in _KINDS if kind in value), None)
    for kind, model in _KIND_MODELS.items():
        if isinstance(value, model):
            return kind
    return None


Condition = Annotated[
    Annotated[AndCondition, Tag("and")]
    | Annotated[OrCondition, Tag("or")]
    | Annotated[NotCondition, Tag("not")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[SequenceCondition, Tag("sequence")]
    | Annotated[SegmentCondition, Tag("segment")],
    Discriminator(_condition_kind),
]
"""A condition node (SPEC §4.1), told apart by which of its kind keys it has."""

_KIND_MODELS: dict[str, Any] = {
    "and": AndCondition,
    "or": OrCondition,
    "not": NotCondition,
    "event": EventCondition,
    "sequence": SequenceCondition,
    "segment": SegmentCondition,
}


def condition_depth(node: object) -> int:
    """Nesting depth: the root is 1 and each child adds 1 (`where` items do not count)."""
    if isinstance(node, AndCondition | OrCondition):
        children = node.and_ if isinstance(node, AndCondition) else node.or_
        return 1 + max(condition_depth(child) for child in children)
    if isinstance(node, NotCondition):
        return 1 + condition_depth(node.not_)
    return 1


class SegmentDefinition(StrictModel):
    """A segment definition as submitted (SPEC §4)."""

    nullable: ClassVar[frozenset[str]] = frozenset({"description"})
    id: SegmentIdText
    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]
    description: StrictStr | None = None
    condition: Condition

    @model_validator(mode="after")
    def _depth(self) -> Self:
        if condition_depth(self.condition) > MAX_DEPTH:
            raise ValueError(f"conditions may be nested at most {MAX_DEPTH} levels deep")
        return self


class SegmentVersion(SegmentDefinition):
    """A definition on the segments topic, with the version the writer assigned."""

    version: Annotated[StrictInt, Field(ge=1)]


class DeletionMarker(StrictModel):
    """A deletion on the segments topic; it keeps the last version so versions are not reused."""

    id: SegmentIdText
    deleted: Literal[True]
    version: Annotated[StrictInt, Field(ge=1)]


def _record_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "deleted" if "deleted" in value else "definition"
    return "deleted" if isinstance(value, DeletionMarker) else "definition"


SegmentRecord = Annotated[
    Annotated[SegmentVersion, Tag("definition")] | Annotated[DeletionMarker, Tag("deleted")],
    Discriminator(_record_kind),
]
"""A record value of the segments topic (SPEC §4.3)."""

for _model in (AndCondition, OrCondition, NotCondition, SegmentDefinition, SegmentVersion):
    _model.model_rebuild()
