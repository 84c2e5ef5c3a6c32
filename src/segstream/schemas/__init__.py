"""Wire formats of SPEC §3, §4 and §6: fast input parsing, pydantic models, JSON Schema export.

Import the submodules directly; this package imports nothing so that the fast path
(`segstream.schemas.events`) does not pay for pydantic.
"""
