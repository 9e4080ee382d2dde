"""Differential transcripts (issue 9): the same scenario run against the real SpacetimeDB server and ours.

* ``scenarios.py``: the fixed steps per example module (HTTP requests, v2 BSATN WebSocket clients).
* ``capture.py``: runs them against a server and writes normalised JSON transcripts.  To re-record, start a real
  SpacetimeDB standalone server on a loopback port and run
  ``python -m tests.transcripts.capture --server http://127.0.0.1:PORT --out tests/data/transcripts
  --server-version "SpacetimeDB standalone vX.Y.Z-..."`` (only the transcripts are committed).
* ``compare.py``: step-by-step comparison with known deviations; ``tests/test_transcripts.py`` replays every
  scenario against ``spacetime-py start`` with it.
"""
