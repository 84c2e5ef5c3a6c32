"""The admin HTTP API (segments, preview, members, profiles), served by every worker.

A thin shell over the pure core: definitions are written through the SegmentWriter
(SPEC §4.3), reads come from the partitions this worker owns, and requests for the other
partitions are forwarded to their owners' advertised web URLs (/internal/...).
"""

from segstream.api.routes import HttpApi

__all__ = ["HttpApi"]
