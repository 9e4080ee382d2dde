"""The fixed scenario run against each example module (issue 9, differential transcripts).

A scenario is a list of steps, run in order by ``tests.transcripts.capture``:

* ``("http", label, method, path, body, auth)`` -- an HTTP request; ``path`` may contain ``{db}`` (the database
  name); ``body`` is bytes, a str, or a JSON-able object (sent as JSON); ``auth`` is ``"owner"``, ``"other"``
  or ``None``.
* ``("connect", client, auth)`` -- open a v2 BSATN WebSocket as ``client`` (a label) with that token.
* ``("subscribe", client, request_id, query_set_id, [sql, ...])``
* ``("unsubscribe", client, request_id, query_set_id)``
* ``("oneoff", client, request_id, sql)``
* ``("call", client, request_id, reducer, json_args)`` -- args are JSON (as for /call) encoded to BSATN with the
  reducer's parameter types from the server's schema.
* ``("call_raw", client, request_id, reducer, hex_args)`` -- args sent as these exact bytes.
* ``("disconnect", client)``
* ``("sleep", seconds)`` -- for scheduled reducers.

Everything the server answers is recorded; nothing here says what the answer should be.
"""

from __future__ import annotations

# The calls every module gets: publish is done by the capture tool itself.
_COMMON_TAIL = [
    ("http", "database info", "GET", "/v1/database/{db}", None, None),
    ("http", "schema v9", "GET", "/v1/database/{db}/schema?version=9", None, None),
    ("http", "schema v10", "GET", "/v1/database/{db}/schema?version=10", None, None),
    ("http", "schema bad version", "GET", "/v1/database/{db}/schema?version=7", None, None),
    ("http", "call unknown reducer", "POST", "/v1/database/{db}/call/no_such_reducer", [], "owner"),
    ("http", "sql bad query", "POST", "/v1/database/{db}/sql", "SELEC nonsense", "owner"),
    ("http", "sql unknown table", "POST", "/v1/database/{db}/sql", "SELECT * FROM no_such_table", "owner"),
    ("http", "logs", "GET", "/v1/database/{db}/logs?num_lines=100", None, "owner"),
    ("http", "logs without auth", "GET", "/v1/database/{db}/logs?num_lines=10", None, None),
    ("http", "unknown database sql", "POST", "/v1/database/no-such-db-transcripts/sql", "SELECT * FROM x",
     "owner"),
    ("http", "unknown database call", "POST", "/v1/database/no-such-db-transcripts/call/x", [], "owner"),
]

QUICKSTART = [
    ("connect", "A", "owner"),
    ("subscribe", "A", 1, 1, ["SELECT * FROM user", "SELECT * FROM message"]),
    ("call", "A", 2, "set_name", ["alice"]),
    ("call", "A", 3, "send_message", ["hello"]),
    ("call", "A", 4, "send_message", [""]),
    ("call", "A", 5, "no_such_reducer", []),
    ("call_raw", "A", 6, "send_message", "ff"),
    ("connect", "B", "other"),
    ("call", "B", 7, "set_name", ["bob"]),
    ("call", "B", 8, "send_message", ["hi from bob"]),
    ("oneoff", "A", 9, "SELECT * FROM message WHERE text = 'hello'"),
    ("oneoff", "A", 10, "SELECT * FROM nope"),
    ("subscribe", "A", 11, 2, ["SELECT * FROM nope"]),
    ("unsubscribe", "A", 12, 1),
    ("call", "B", 13, "send_message", ["after unsubscribe"]),
    ("disconnect", "B"),
    ("http", "call set_name (http)", "POST", "/v1/database/{db}/call/set_name", ["carol"], "owner"),
    ("http", "call send_message (http)", "POST", "/v1/database/{db}/call/send_message", ["via http"], "owner"),
    ("http", "call sender error", "POST", "/v1/database/{db}/call/send_message", [""], "owner"),
    ("http", "call bad args (type)", "POST", "/v1/database/{db}/call/send_message", [5], "owner"),
    ("http", "call bad args (arity)", "POST", "/v1/database/{db}/call/send_message", ["a", "b"], "owner"),
    ("http", "call bad json", "POST", "/v1/database/{db}/call/send_message", b"[not json", "owner"),
    ("http", "call anonymous", "POST", "/v1/database/{db}/call/send_message", ["anon"], None),
    ("http", "sql select user", "POST", "/v1/database/{db}/sql", "SELECT * FROM user", "owner"),
    ("http", "sql select message", "POST", "/v1/database/{db}/sql", "SELECT * FROM message", "owner"),
    ("http", "sql two statements", "POST", "/v1/database/{db}/sql",
     "SELECT * FROM user; SELECT text FROM message", "owner"),
    ("http", "sql where", "POST", "/v1/database/{db}/sql", "SELECT text FROM message WHERE text = 'hello'",
     "owner"),
    ("http", "sql insert (owner)", "POST", "/v1/database/{db}/sql",
     "INSERT INTO message (sender, sent, text) VALUES (0x00, 0, 'dml')", "owner"),
    ("http", "sql delete (owner)", "POST", "/v1/database/{db}/sql", "DELETE FROM message WHERE text = 'dml'",
     "owner"),
    ("http", "sql delete (other)", "POST", "/v1/database/{db}/sql", "DELETE FROM message", "other"),
    ("http", "sql after dml", "POST", "/v1/database/{db}/sql", "SELECT text FROM message", "owner"),
    ("disconnect", "A"),
]

REMINDERS = [
    ("connect", "A", "owner"),
    ("subscribe", "A", 1, 1, ["SELECT * FROM fired"]),
    ("call", "A", 2, "remind_me", ["tea", 1000]),
    ("sleep", 2.0),
    ("call", "A", 3, "start_heartbeat", [600000]),
    ("call", "A", 4, "remind", [{"scheduled_id": 1,
                                 "scheduled_at": {"Time": {"__timestamp_micros_since_unix_epoch__": 0}},
                                 "text": "direct"}]),
    ("disconnect", "A"),
    ("http", "sql fired", "POST", "/v1/database/{db}/sql", "SELECT what FROM fired", "owner"),
    ("http", "sql private reminder (owner)", "POST", "/v1/database/{db}/sql", "SELECT * FROM reminder", "owner"),
    ("http", "sql private heartbeat (owner)", "POST", "/v1/database/{db}/sql", "SELECT * FROM heartbeat",
     "owner"),
    ("http", "sql private heartbeat (other)", "POST", "/v1/database/{db}/sql", "SELECT * FROM heartbeat",
     "other"),
    ("http", "call stop_heartbeat", "POST", "/v1/database/{db}/call/stop_heartbeat", [], "owner"),
    ("http", "sql heartbeat after stop", "POST", "/v1/database/{db}/sql", "SELECT * FROM heartbeat", "owner"),
]

KEYNOTE = [
    ("http", "call seed", "POST", "/v1/database/{db}/call/seed", [4, 100], "owner"),
    ("connect", "A", "owner"),
    ("connect", "B", "other"),
    ("subscribe", "A", 1, 1, ["SELECT * FROM accounts WHERE id = 1"]),
    ("subscribe", "B", 1, 7, ["SELECT * FROM accounts"]),
    ("call", "A", 2, "transfer", [0, 1, 30]),
    ("call", "A", 3, "transfer", [2, 3, 5]),
    ("call", "B", 2, "transfer", [1, 1, 5]),
    ("call", "B", 3, "transfer", [1, 2, 1000]),
    ("call", "B", 4, "transfer", [1, 9, 1]),
    ("oneoff", "B", 5, "SELECT * FROM accounts WHERE balance > 99"),
    ("unsubscribe", "B", 6, 7),
    ("unsubscribe", "B", 7, 7),
    ("disconnect", "A"),
    ("disconnect", "B"),
    ("http", "sql accounts", "POST", "/v1/database/{db}/sql", "SELECT * FROM accounts", "owner"),
    ("http", "sql where", "POST", "/v1/database/{db}/sql", "SELECT id FROM accounts WHERE balance >= 100",
     "owner"),
    ("http", "call bad args (negative u32)", "POST", "/v1/database/{db}/call/transfer", [-1, 1, 1], "owner"),
    ("http", "call sender error", "POST", "/v1/database/{db}/call/transfer", [0, 0, 1], "owner"),
]

HTTP_API = [
    ("http", "route get", "GET", "/v1/database/{db}/route/get", None, None),
    ("http", "route create note", "POST", "/v1/database/{db}/route/notes", "milk", None),
    ("http", "route create empty note", "POST", "/v1/database/{db}/route/notes", "", None),
    ("http", "route list notes", "GET", "/v1/database/{db}/route/notes", None, None),
    ("http", "route echo", "PUT", "/v1/database/{db}/route/echo?x=1&y=two", "payload", None),
    ("http", "route fail", "GET", "/v1/database/{db}/route/fail", None, None),
    ("http", "route unknown path", "GET", "/v1/database/{db}/route/nowhere", None, None),
    ("http", "route wrong method", "DELETE", "/v1/database/{db}/route/get", None, None),
    ("http", "call add_note", "POST", "/v1/database/{db}/call/add_note", ["apple"], "owner"),
    ("http", "call add_note 2", "POST", "/v1/database/{db}/call/add_note", ["zebra"], "owner"),
    ("connect", "A", "owner"),
    ("subscribe", "A", 1, 1, ["SELECT * FROM short_notes"]),
    ("call", "A", 2, "add_note", ["banana"]),
    ("call", "A", 3, "add_note", ["yak"]),
    ("oneoff", "A", 4, "SELECT * FROM short_notes"),
    ("disconnect", "A"),
    ("http", "sql notes", "POST", "/v1/database/{db}/sql", "SELECT id, text FROM note", "owner"),
    ("http", "sql view", "POST", "/v1/database/{db}/sql", "SELECT text FROM short_notes", "owner"),
]


# sdk_test names its tables and reducers like upstream's Rust module (`one_u8`, `insert_one_u8`); its module def
# asks for snake-case conversion, so the canonical names clients use are `one_u_8`, `insert_one_u_8`.
SDK_TEST = [
    ("connect", "A", "owner"),
    ("subscribe", "A", 1, 1, [
        "SELECT * FROM one_u_8", "SELECT * FROM one_i_128", "SELECT * FROM one_string", "SELECT * FROM one_f_64",
        "SELECT * FROM one_identity", "SELECT * FROM one_timestamp", "SELECT * FROM option_i_32",
        "SELECT * FROM option_string", "SELECT * FROM one_enum_with_payload", "SELECT * FROM one_simple_enum",
        "SELECT * FROM one_every_primitive_struct", "SELECT * FROM vec_u_32", "SELECT * FROM vec_string",
        "SELECT * FROM pk_u_32", "SELECT * FROM unique_string", "SELECT * FROM pk_identity",
        "SELECT * FROM users",
    ]),
    ("call", "A", 2, "insert_one_u_8", [7]),
    ("call", "A", 3, "insert_one_i_128", [-170141183460469231731687303715884105728]),
    ("call", "A", 4, "insert_one_string", ["héllo \"quoted\""]),
    ("call", "A", 5, "insert_one_f_64", [2.5]),
    ("call", "A", 6, "insert_caller_one_identity", []),
    ("call", "A", 7, "insert_call_timestamp", []),
    ("call", "A", 8, "insert_option_i_32", [{"some": 5}]),
    ("call", "A", 9, "insert_option_i_32", [{"none": []}]),
    ("call", "A", 10, "insert_option_string", [{"some": "x"}]),
    ("call", "A", 11, "insert_one_simple_enum", [[1, []]]),
    ("call", "A", 12, "insert_one_enum_with_payload", [[15, "payload"]]),
    ("call", "A", 13, "insert_one_enum_with_payload", [[21, [1, 2, 3]]]),
    ("call", "A", 14, "insert_vec_u_32", [[1, 2, 3]]),
    ("call", "A", 15, "insert_vec_string", [["a", "", "ccc"]]),
    ("call", "A", 16, "insert_pk_u_32", [1, 10]),
    ("call", "A", 17, "insert_pk_u_32", [1, 11]),
    ("call", "A", 18, "update_pk_u_32", [1, 12]),
    ("call", "A", 19, "delete_pk_u_32", [1]),
    ("call", "A", 20, "insert_unique_string", ["k", 1]),
    ("call", "A", 21, "insert_unique_string", ["k", 2]),
    ("call", "A", 22, "update_unique_string", ["k", 3]),
    ("call", "A", 23, "insert_caller_pk_identity", [5]),
    ("call", "A", 24, "delete_all_one_u_8", [7]),
    ("call", "A", 25, "insert_one_every_primitive_struct", [{
        "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": -1, "h": -2, "i": -3, "j": -4, "k": -5, "l": -6,
        "m": False, "n": 1.25, "o": -2.5, "p": "s",
        "q": {"__identity__": "0x" + "00" * 31 + "01"}, "r": {"__connection_id__": 0},
        "s": {"__timestamp_micros_since_unix_epoch__": 1_700_000_000}, "t": {"__time_duration_micros__": 3_000_000},
        "u": {"__uuid__": 7},
    }]),
    ("call", "A", 26, "no_op_succeeds", []),
    ("call_raw", "A", 27, "insert_one_u_8", ""),
    ("connect", "B", "other"),
    ("call", "B", 1, "insert_user", ["bob", {"__identity__": "0x" + "ab" * 32}]),
    ("call", "B", 2, "insert_one_u_8", [9]),
    ("oneoff", "B", 3, "SELECT * FROM pk_identity"),
    # source names (before the module's case conversion): which lookups accept them
    ("call", "A", 28, "insert_one_u8", [7]),
    ("subscribe", "A", 29, 3, ["SELECT * FROM one_u8"]),
    ("oneoff", "A", 30, "SELECT * FROM one_u8"),
    ("unsubscribe", "A", 31, 1),
    ("disconnect", "A"),
    ("disconnect", "B"),
    ("http", "sql one_u_8", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_u_8", "owner"),
    ("http", "sql option_i_32", "POST", "/v1/database/{db}/sql", "SELECT * FROM option_i_32", "owner"),
    ("http", "sql one_enum_with_payload", "POST", "/v1/database/{db}/sql",
     "SELECT * FROM one_enum_with_payload", "owner"),
    ("http", "sql vec_string", "POST", "/v1/database/{db}/sql", "SELECT * FROM vec_string", "owner"),
    ("http", "sql one_identity", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_identity", "owner"),
    ("http", "sql one_timestamp", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_timestamp", "owner"),
    ("http", "sql pk_u_32", "POST", "/v1/database/{db}/sql", "SELECT * FROM pk_u_32", "owner"),
    ("http", "sql every primitive", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_every_primitive_struct",
     "owner"),
    ("http", "sql where", "POST", "/v1/database/{db}/sql", "SELECT * FROM unique_string WHERE s = 'k'", "owner"),
    ("http", "sql i128", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_i_128", "owner"),
    ("http", "call u256 (http)", "POST", "/v1/database/{db}/call/insert_one_u_256",
     ["0x" + "ff" * 32], "owner"),
    ("http", "sql u256", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_u_256", "owner"),
    ("http", "sql source name", "POST", "/v1/database/{db}/sql", "SELECT * FROM one_u8", "owner"),
    ("http", "call source name (http)", "POST", "/v1/database/{db}/call/insert_one_u8", [1], "owner"),
    ("http", "call unique clash (http)", "POST", "/v1/database/{db}/call/insert_unique_string", ["k", 9], "owner"),
]

# sdk_test_case_conversion (upstream's sdk-test-case-conversion): names in every case the server converts, two
# explicit names (`Player1Canonical`, `banPlayer1`) and a view with one (`Level2Person`).  Rows show converted
# field names (`player_1_id`, nested `age_value_1`) and variants (`active1`, `bannedUntil`); SQL also takes the
# module's own names (`player1`, `FirstName`, `person_at_level_2`); calls go by canonical name only.
CASE_CONVERSION = [
    ("connect", "A", "owner"),
    ("subscribe", "A", 1, 1, ["SELECT * FROM Player1Canonical", "SELECT * FROM person_2",
                              "SELECT * FROM Level2Person"]),
    ("call", "A", 2, "create_player_1", ["ann", 2]),
    ("call", "A", 3, "create_player_1", ["bea", 1]),
    ("call", "A", 4, "add_person_2", ["cy", 1, 30, 7]),
    ("call", "A", 5, "add_person_2", ["di", 2, 40, 8]),
    ("call", "A", 6, "banPlayer1", [1, 99]),
    ("call", "A", 7, "CreatePlayer1", ["source name", 1]),
    ("call", "A", 8, "ban_player_1", [1, 5]),
    ("oneoff", "A", 9, "SELECT * FROM player1 WHERE currentLevel2 = 2"),
    ("oneoff", "A", 10, "SELECT * FROM person_at_level_2"),
    ("subscribe", "A", 11, 2, ["SELECT * FROM person2 WHERE playerRef = 2"]),
    ("unsubscribe", "A", 12, 1),
    ("disconnect", "A"),
    ("http", "sql canonical table", "POST", "/v1/database/{db}/sql", "SELECT * FROM Player1Canonical", "owner"),
    ("http", "sql source table", "POST", "/v1/database/{db}/sql", "SELECT * FROM player1", "owner"),
    ("http", "sql converted table", "POST", "/v1/database/{db}/sql", "SELECT * FROM player_1_canonical", "owner"),
    ("http", "sql nested struct", "POST", "/v1/database/{db}/sql", "SELECT * FROM person_2", "owner"),
    ("http", "sql source columns", "POST", "/v1/database/{db}/sql",
     "SELECT FirstName, player_ref FROM person2 WHERE Person2Id = 1", "owner"),
    ("http", "sql aliased source column", "POST", "/v1/database/{db}/sql",
     "SELECT p.FirstName FROM person_2 p WHERE p.playerRef = 2", "owner"),
    ("http", "sql view", "POST", "/v1/database/{db}/sql", "SELECT * FROM Level2Person", "owner"),
    ("http", "sql view source names", "POST", "/v1/database/{db}/sql",
     "SELECT FirstName FROM person_at_level_2 WHERE playerRef = 2", "owner"),
    ("http", "sql count view", "POST", "/v1/database/{db}/sql", "SELECT COUNT(*) AS n FROM Level2Person", "owner"),
    ("http", "call canonical (http)", "POST", "/v1/database/{db}/call/create_player_1", ["eve", 2], "owner"),
    ("http", "call named args (http)", "POST", "/v1/database/{db}/call/create_player_1",
     {"Player1Name": "fay", "Start2Level": 3}, "owner"),
    ("http", "call source name (http)", "POST", "/v1/database/{db}/call/CreatePlayer1", ["gus", 1], "owner"),
    ("http", "call explicit name (http)", "POST", "/v1/database/{db}/call/banPlayer1", [2, 7], "owner"),
    ("http", "call converted explicit name (http)", "POST", "/v1/database/{db}/call/ban_player_1", [2, 7],
     "owner"),
    ("http", "sql after calls", "POST", "/v1/database/{db}/sql", "SELECT * FROM Player1Canonical", "owner"),
]

#: module name -> (example directory, scenario). Order is the order of capture and replay.
SCENARIOS: dict[str, tuple[str, list]] = {
    "quickstart": ("examples/quickstart", QUICKSTART + _COMMON_TAIL),
    "reminders": ("examples/reminders", REMINDERS + _COMMON_TAIL),
    "keynote": ("examples/keynote", KEYNOTE + _COMMON_TAIL),
    "http_api": ("examples/http_api", HTTP_API + _COMMON_TAIL),
    "sdk_test": ("examples/sdk_test", SDK_TEST + _COMMON_TAIL),
    "sdk_test_case_conversion": ("examples/sdk_test_case_conversion", CASE_CONVERSION + _COMMON_TAIL),
}
