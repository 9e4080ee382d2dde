"""Exceptions a module sees: `SenderError` (the user error) and the typed host errors (module-abi.md section 3).

Raising `SenderError("msg")` in a reducer rolls the transaction back and sends exactly "msg" to the caller.
Any other exception also rolls back; the caller gets "Type: message" and the module log a traceback.
Host errors are raised by table/index handles when the host returns an errno, e.g. `UniqueAlreadyExists`
from `insert`.
"""


class SenderError(Exception):
    """The caller did something wrong: the message (str(e)) is what the caller receives."""


class SpacetimeError(Exception):
    """Base of the errors the host reports through an errno; `errno` holds the code."""

    errno = 0
    text = 'host error'  # the default message (a class attribute: module code is built without docstrings)

    def __init__(self, message=None):
        super().__init__(message if message is not None else self.text)


class NotInTransaction(SpacetimeError):
    """the datastore was used with no transaction open"""

    errno = 2
    text = 'the datastore was used with no transaction open'


class BsatnDecodeError(SpacetimeError):
    """the host could not decode a value (row, key or bound) at the expected type"""

    errno = 3
    text = 'the host could not decode a value (row, key or bound) at the expected type'


class NoSuchTable(SpacetimeError):
    """no such table"""

    errno = 4
    text = 'no such table'


class NoSuchIndex(SpacetimeError):
    """no such index"""

    errno = 5
    text = 'no such index'


class NoSuchIter(SpacetimeError):
    """no such row iterator"""

    errno = 6
    text = 'no such row iterator'


class NoSuchConsoleTimer(SpacetimeError):
    """no such console timer"""

    errno = 7
    text = 'no such console timer'


class NoSuchBytes(SpacetimeError):
    """no such bytes source or sink"""

    errno = 8
    text = 'no such bytes source or sink'


class NoSpace(SpacetimeError):
    """no space left in a bytes sink"""

    errno = 9
    text = 'no space left in a bytes sink'


class WrongIndexAlgo(SpacetimeError):
    """the index algorithm does not support this scan"""

    errno = 10
    text = 'the index algorithm does not support this scan'


class BufferTooSmall(SpacetimeError):
    """the buffer is too small"""

    errno = 11
    text = 'the buffer is too small'


class UniqueAlreadyExists(SpacetimeError):
    """a row with the same value in a unique column already exists"""

    errno = 12
    text = 'a row with the same value in a unique column already exists'


class ScheduleAtDelayTooLong(SpacetimeError):
    """the scheduled delay is too long (at most about 2 years)"""

    errno = 13
    text = 'the scheduled delay is too long (at most about 2 years)'


class IndexNotUnique(SpacetimeError):
    """the index is not unique"""

    errno = 14
    text = 'the index is not unique'


class NoSuchRow(SpacetimeError):
    """no row with that key exists"""

    errno = 15
    text = 'no row with that key exists'


class AutoIncOverflow(SpacetimeError):
    """an auto-increment sequence overflowed"""

    errno = 16
    text = 'an auto-increment sequence overflowed'


class WouldBlockTransaction(SpacetimeError):
    """a transaction is already open: finish it before sleeping, making HTTP requests or starting another"""

    errno = 17
    text = 'a transaction is already open: finish it before sleeping, making HTTP requests or starting another'


class TransactionNotAnonymous(SpacetimeError):
    """no transaction started with with_tx is open"""

    errno = 18
    text = 'no transaction started with with_tx is open'


class TransactionIsReadOnly(SpacetimeError):
    """the transaction is read-only"""

    errno = 19
    text = 'the transaction is read-only'


class TransactionIsMut(SpacetimeError):
    """the transaction is mutable"""

    errno = 20
    text = 'the transaction is mutable'


class HttpError(SpacetimeError):
    """the HTTP request failed before a response arrived; the message says why"""

    errno = 21
    text = 'the HTTP request failed before a response arrived; the message says why'


class HostCallFailure(SpacetimeError):
    """the host reported an unknown error"""

    errno = 1
    text = 'the host reported an unknown error'


BY_ERRNO = {c.errno: c for c in (
    HostCallFailure, NotInTransaction, BsatnDecodeError, NoSuchTable, NoSuchIndex, NoSuchIter, NoSuchConsoleTimer,
    NoSuchBytes, NoSpace, WrongIndexAlgo, BufferTooSmall, UniqueAlreadyExists, ScheduleAtDelayTooLong,
    IndexNotUnique, NoSuchRow, AutoIncOverflow, WouldBlockTransaction, TransactionNotAnonymous,
    TransactionIsReadOnly, TransactionIsMut, HttpError,
)}


def from_errno(code, message=None):
    cls = BY_ERRNO.get(code)
    if cls is None:
        e = SpacetimeError(f'host error {code}')
        e.errno = code
        return e
    return cls(message)
