"""`python -m harness.cli` runs `spacetime-py`."""

from harness.cli import main

main()
