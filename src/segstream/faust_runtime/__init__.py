"""The Faust runtime (`segstream worker --runtime faust`, extra `segstream[faust]`).

The same pure engine (`segstream.engine`) driven by a Faust agent, with profile state in Faust
tables on the RocksDB store. docs/faust.md says what it guarantees and how it differs from the
native worker; docs/runtimes.md compares the two.
"""
