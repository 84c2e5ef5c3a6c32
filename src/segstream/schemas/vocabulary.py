"""The fixed words of the wire formats: event types, standard trait values, operators, patterns."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ACTIVITY_TYPES",
    "AGGREGATES",
    "CUSTOM_TYPE",
    "CUSTOM_TYPE_PATTERN",
    "DEVICE_TYPES",
    "MEASURE_OPERATORS",
    "OPERATORS",
    "PROFILE_TYPES",
    "SEGMENT_ID",
    "SEGMENT_ID_PATTERN",
    "SUBSCRIPTION_SOURCES",
    "is_activity_type",
]

PROFILE_TYPES: Final = ("profile.updated", "profile.deleted")
ACTIVITY_TYPES: Final = (
    "link.clicked",
    "page.viewed",
    "product.viewed",
    "cart.added",
    "order.purchased",
    "app.installed",
    "form.completed",
)
CUSTOM_TYPE: Final = re.compile(r"custom\.[a-z0-9_.-]{1,64}")
CUSTOM_TYPE_PATTERN: Final = r"^custom\.[a-z0-9_.-]{1,64}$"

SEGMENT_ID: Final = re.compile(r"[a-z0-9_-]{1,64}")
SEGMENT_ID_PATTERN: Final = r"^[a-z0-9_-]{1,64}$"

DEVICE_TYPES: Final = ("desktop", "mobile", "tablet")
SUBSCRIPTION_SOURCES: Final = (
    "qr_code",
    "shareable_link",
    "form",
    "checkout_opt_in",
    "capture",
    "channel",
    "short_code",
    "api",
    "import",
)

OPERATORS: Final = (
    "eq",
    "neq",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "not_exists",
    "contains",
    "starts_with",
    "ends_with",
    "before",
    "after",
    "within_last",
    "more_than_ago",
    "near",
    # v1.2 (SPEC §4.4)
    "within_next",
    "anniversary_within_next",
    "anniversary_within_last",
    "matches",
)
MEASURE_OPERATORS: Final = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
AGGREGATES: Final = ("sum", "avg", "min", "max")

_ACTIVITY_SET: Final = frozenset(ACTIVITY_TYPES)


def is_activity_type(text: object) -> bool:
    """True for a standard activity type or `custom.<name>` (SPEC §3.2)."""
    if not isinstance(text, str):
        return False
    return text in _ACTIVITY_SET or CUSTOM_TYPE.fullmatch(text) is not None
