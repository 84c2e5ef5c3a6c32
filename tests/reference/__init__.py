"""A naive reference implementation of the replay semantics (SPEC §3-§8), for tests."""
