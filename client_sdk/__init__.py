"""Python client side of the SpacetimeDB 2.x WebSocket protocol.

``client_sdk.protocol`` defines every v2 message (both directions) and v3 framing as SATS types over the
shared BSATN codec in ``module_sdk.sats``; the server in ``harness.server`` uses the same definitions.
"""
