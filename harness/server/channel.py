"""The records between the gateway process and the database process (split mode, docs in gateway.py).

One AF_UNIX stream carries every WebSocket connection of the server, multiplexed as records
``<u32 length><u32 connection id><u8 kind><payload>`` (``length`` counts id, kind and payload).  Records are
written in batches (everything one side has at a wake-up in one write) so a message costs a few microseconds
of IPC instead of a syscall and a context switch of its own.

Gateway -> database: OPEN (JSON: database, identity, connection id, token, v3, confirmed), MSG (one raw
WebSocket binary payload as the client sent it), CLOSE (the client is gone).
Database -> gateway: READY (connection 0, once, the worker is serving), OPENED (<u32 database key, i64 durable
offset>), REJECT (JSON: status or null, text), MSG (<i64 offset> + one encoded ServerMessage body: with
confirmed reads the gateway sends it once the database's durable offset reaches ``offset``; -1: at once), DONE
(<u32 messages, u64 bytes>: client messages that have run, the gateway's in-flight credit), CLOSE (<u16 code>
reason: close the WebSocket after what came before), KICK (abort: the client fell too far behind), GONE
(disconnect ran; the id may be reused), DURABLE (connection 0, <u32 database key, i64 offset>: sent by the
durability thread after each fsync, one record for all the database's clients).
"""

from __future__ import annotations

import struct

from harness.limits import LIMITS

OPEN, MSG, CLOSE, READY, OPENED, REJECT, DONE, KICK, GONE, DURABLE = range(1, 11)

HEADER = struct.Struct("<IIB")
DONE_BODY = struct.Struct("<IQ")
OFFSET = struct.Struct("<q")  # MSG prefix: the tx offset that must be durable before it is sent, or -1
DURABLE_BODY = struct.Struct("<Iq")  # database key, durable offset
RECORD_SLACK = 64 * 1024  # room for the connection metadata of OPEN / REJECT


def record_limit() -> int:
    """The largest record either side accepts: one client message (``ws_message_bytes``) or one server message
    (a client's whole outbox budget, ``ws_outbox_bytes``), plus slack.  A larger record is a broken peer."""
    return max(LIMITS.ws_message_bytes, LIMITS.ws_outbox_bytes) + RECORD_SLACK


def record(conn: int, kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload) + 5, conn, kind) + payload


class ChannelError(Exception):
    """The peer sent something that is not a record stream (a bug or a dead peer): the channel is closed."""


class RecordReader:
    """Reassembles records from stream chunks; at most one partial record (< ``record_limit()``) is held."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._limit = record_limit()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """``data`` from the stream -> the complete records ``(connection id, kind, payload)`` it finishes."""
        buf = self._buf
        buf += data
        out = []
        pos = 0
        n = len(buf)
        unpack = HEADER.unpack_from
        while n - pos >= 9:
            length, conn, kind = unpack(buf, pos)
            if length < 5 or length > self._limit:
                raise ChannelError(f"bad record length {length}")
            end = pos + 4 + length
            if end > n:
                break
            out.append((conn, kind, bytes(buf[pos + 9:end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


__all__ = ["CLOSE", "DONE", "DONE_BODY", "DURABLE", "DURABLE_BODY", "GONE", "KICK", "MSG", "OFFSET", "OPEN", "OPENED",
           "READY", "REJECT", "ChannelError",
           "RecordReader", "record", "record_limit"]
