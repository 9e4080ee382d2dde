"""Transactional in-memory datastore of the Python SpacetimeDB host.

Typical use by the ABI layer (ids come from ``table_id``/``index_id``)::

    ds = Datastore()
    tid = ds.create_table(TableSchema("person", ("id", "name"), decode, encode,
                                      indexes=(IndexSchema("person_id_idx_btree", (0,), unique=True),),
                                      sequences=(SequenceSchema(0),), primary_key=0))
    tx = ds.begin()
    res = tx.insert(tid, row_bsatn)        # res.generated -> write-back values
    rows = tx.index_range_bsatn(iid, prefix, Included(lo), Excluded(hi))
    txdata = tx.commit()                   # or tx.rollback()

Every ABI-visible failure is a ``DatastoreError`` subclass with an ``errno``.
"""

from .datastore import Datastore
from .errors import (
    BsatnDecodeError,
    DatastoreError,
    IndexNotUnique,
    NoSuchIndex,
    NoSuchRow,
    NoSuchTable,
    NotInTransaction,
    ReplayError,
    ScheduleAtDelayTooLong,
    SchemaError,
    TxAlreadyOpen,
    UniqueAlreadyExists,
    WrongIndexAlgo,
)
from .index import UNBOUNDED, Bound, Excluded, Included, Unbounded
from .schema import I128_MAX, IndexAlgo, IndexSchema, SequenceSchema, TableSchema
from .transaction import InsertResult, ReadTx, Tx
from .txdata import TableDelta, TxData

__all__ = [
    "I128_MAX",
    "UNBOUNDED",
    "Bound",
    "BsatnDecodeError",
    "Datastore",
    "DatastoreError",
    "Excluded",
    "Included",
    "IndexAlgo",
    "IndexNotUnique",
    "IndexSchema",
    "InsertResult",
    "NoSuchIndex",
    "NoSuchRow",
    "NoSuchTable",
    "NotInTransaction",
    "ReadTx",
    "ReplayError",
    "ScheduleAtDelayTooLong",
    "SchemaError",
    "SequenceSchema",
    "TableDelta",
    "TableSchema",
    "Tx",
    "TxAlreadyOpen",
    "TxData",
    "Unbounded",
    "UniqueAlreadyExists",
    "WrongIndexAlgo",
]
