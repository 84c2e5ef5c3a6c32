"""Per-profile state: the profile model, its byte codec, and the due-time index."""

from segstream.state.codec import decode_profile, encode_profile
from segstream.state.due_index import DueIndex
from segstream.state.profile import ProfileState, StoredEvent

__all__ = ["DueIndex", "ProfileState", "StoredEvent", "decode_profile", "encode_profile"]
