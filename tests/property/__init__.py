"""Property-based tests of the segment engine against the naive reference."""
