"""Exceptions raised by the client SDK. Timeouts raise the builtin `TimeoutError`."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base class of every client SDK error."""


class ConnectError(ClientError):
    """The connection could not be established (refused, handshake rejected, no InitialConnection)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ConnectionClosedError(ClientError):
    """The connection closed (or was never open) while a request was waiting for its answer."""


class ReducerError(ClientError):
    """A reducer call did not commit. `event` is the ReducerEvent; `message` the server's text."""

    def __init__(self, message: str, event: Any = None):
        super().__init__(message)
        self.message = message
        self.event = event


class ReducerFailedError(ReducerError):
    """The reducer returned an error (a `SenderError` in a Python module); nothing was committed."""


class ReducerInternalError(ReducerError):
    """The reducer panicked / trapped, ran out of energy, does not exist or got bad arguments."""


class SubscriptionFailedError(ClientError):
    """The server refused a subscription (bad query, unknown table, ...) or dropped it later."""


class QueryError(ClientError):
    """A one-off query failed; the message is the server's."""


class ProcedureError(ClientError):
    """A procedure call failed; the message is the server's."""
