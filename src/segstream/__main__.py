"""`python -m segstream`: the command line."""

from segstream.cli import main

main()
