"""Python client side of the SpacetimeDB 2.x WebSocket protocol.

``spacetime_core.protocol`` defines every v2 message (both directions) and v3 framing as SATS types over the
shared BSATN codec in ``spacetime_core.sats``; the server in ``harness.server`` uses the same definitions.
"""

from .connection import DbConnection, DbConnectionBuilder, EventContext, ReducerEvent
from .errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    ProcedureError,
    QueryError,
    ReducerError,
    ReducerFailedError,
    ReducerInternalError,
    SubscriptionFailedError,
)
from .module import ModuleSpec

__all__ = [
    "ClientError", "ConnectError", "ConnectionClosedError", "DbConnection", "DbConnectionBuilder", "EventContext",
    "ModuleSpec", "ProcedureError", "QueryError", "ReducerError", "ReducerEvent", "ReducerFailedError",
    "ReducerInternalError", "SubscriptionFailedError",
]
