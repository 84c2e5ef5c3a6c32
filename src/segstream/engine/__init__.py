"""The segment engine (pure): applies records and timers to profile state and emits changes."""

from segstream.engine.membership import MembershipChange, membership_id
from segstream.engine.processor import SegmentEngine
from segstream.engine.registry import SegmentRegistry

__all__ = ["MembershipChange", "SegmentEngine", "SegmentRegistry", "membership_id"]
