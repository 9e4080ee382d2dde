/* The module runtime: CPython 3.11 embedded in a core wasm module for SpacetimeDB.
 *
 * Three jobs, nothing else:
 *   1. `_spacetime`, a builtin Python module that mirrors the host imports of spacetime_10.0 .. 10.5
 *      one-to-one (errno != 0 raises `_spacetime.HostError(errno)`); the typed SDK builds on it.
 *   2. The exports the host calls (__describe_module__, __call_reducer__, __call_procedure__,
 *      __call_view__, __call_view_anon__, __call_http_handler__), which forward to Python callables registered at build time.
 *   3. `stdb_build_init`, run once by the build's snapshotter: it starts the interpreter, runs the boot
 *      script the build serves (module_sdk/build/boot.py) and keeps the dispatch callables.  The snapshot
 *      then freezes the ready interpreter, so a server instantiates it in microseconds.
 *
 * Python exceptions never escape as traps: every export catches and reports them.  Every export the host calls
 * first runs `stdb_unpack()` (unpack.c): the build stores the snapshot's memory compressed, and an instance's
 * first call decodes it in place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* PyMemberDef */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(ver, name) __attribute__((import_module("spacetime_" ver), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(name)))

/* ---- spacetime_10.0 ---- */
IMPORT("10.0", table_id_from_name) int32_t h_table_id_from_name(const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.0", index_id_from_name) int32_t h_index_id_from_name(const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.0", datastore_table_row_count) int32_t h_table_row_count(uint32_t, uint64_t *);
IMPORT("10.0", datastore_table_scan_bsatn) int32_t h_table_scan(uint32_t, uint32_t *);
IMPORT("10.0", datastore_index_scan_range_bsatn)
int32_t h_index_scan_range(uint32_t, const uint8_t *, uint32_t, uint32_t, const uint8_t *, uint32_t, const uint8_t *,
                           uint32_t, uint32_t *);
IMPORT("10.0", datastore_delete_by_index_scan_range_bsatn)
int32_t h_delete_by_index_scan_range(uint32_t, const uint8_t *, uint32_t, uint32_t, const uint8_t *, uint32_t,
                                     const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.0", datastore_delete_all_by_eq_bsatn)
int32_t h_delete_all_by_eq(uint32_t, const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.0", row_iter_bsatn_advance) int32_t h_row_iter_advance(uint32_t, uint8_t *, uint32_t *);
IMPORT("10.0", row_iter_bsatn_close) int32_t h_row_iter_close(uint32_t);
IMPORT("10.0", datastore_insert_bsatn) int32_t h_insert(uint32_t, uint8_t *, uint32_t *);
IMPORT("10.0", datastore_update_bsatn) int32_t h_update(uint32_t, uint32_t, uint8_t *, uint32_t *);
IMPORT("10.0", bytes_sink_write) int32_t h_sink_write(uint32_t, const uint8_t *, uint32_t *);
IMPORT("10.0", bytes_source_read) int32_t h_source_read(uint32_t, uint8_t *, uint32_t *);
IMPORT("10.0", console_log)
void h_console_log(uint32_t, const uint8_t *, uint32_t, const uint8_t *, uint32_t, uint32_t, const uint8_t *, uint32_t);
IMPORT("10.0", console_timer_start) uint32_t h_timer_start(const uint8_t *, uint32_t);
IMPORT("10.0", console_timer_end) int32_t h_timer_end(uint32_t);
IMPORT("10.0", identity) void h_identity(uint8_t *);
IMPORT("10.0", volatile_nonatomic_schedule_immediate)
void h_schedule_immediate(const uint8_t *, uint32_t, const uint8_t *, uint32_t);
/* ---- 10.1 .. 10.5 ---- */
IMPORT("10.1", bytes_source_remaining_length) int32_t h_source_remaining(uint32_t, uint32_t *);
IMPORT("10.2", get_jwt) int32_t h_get_jwt(const uint8_t *, uint32_t *);
IMPORT("10.3", procedure_sleep_until) int64_t h_sleep_until(int64_t);
IMPORT("10.3", procedure_start_mut_tx) int32_t h_start_mut_tx(int64_t *);
IMPORT("10.3", procedure_commit_mut_tx) int32_t h_commit_mut_tx(void);
IMPORT("10.3", procedure_abort_mut_tx) int32_t h_abort_mut_tx(void);
IMPORT("10.3", procedure_http_request)
int32_t h_http_request(const uint8_t *, uint32_t, const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.4", datastore_index_scan_point_bsatn) int32_t h_index_scan_point(uint32_t, const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.4", datastore_delete_by_index_scan_point_bsatn)
int32_t h_delete_by_index_scan_point(uint32_t, const uint8_t *, uint32_t, uint32_t *);
IMPORT("10.5", datastore_clear) int32_t h_clear(uint32_t, uint64_t *);

/* Reserved handles used only while the build pre-initializes the module (never by a real host). */
#define BUILD_ASK_SINK 0xFFFFFF00u
#define BUILD_ANSWER_SOURCE 0xFFFFFF01u

#define ERR_HOST_CALL_FAILURE 1
#define ERR_BUFFER_TOO_SMALL 11
#define LEVEL_ERROR 0

uint64_t stdb_now_us = 0; /* the current call's timestamp; WASI clocks read it (wasi.c) */

static uint8_t NONNULL[8]; /* the host treats pointer 0 as NULL even for empty slices */
static PyObject *HostError;

/* ---------------- helpers ---------------- */

static PyObject *host_error(int32_t rc) {
    PyObject *code = PyLong_FromLong(rc);
    if (code) {
        PyErr_SetObject(HostError, code);
        Py_DECREF(code);
    }
    return NULL;
}
#define CHECK(rc)                                                                                                      \
    do {                                                                                                               \
        int32_t _rc = (rc);                                                                                            \
        if (_rc) return host_error(_rc);                                                                               \
    } while (0)

/* A borrowed view of a bytes-like argument; `held` says whether a buffer must be released. */
typedef struct {
    const uint8_t *ptr;
    uint32_t len;
    Py_buffer view;
    int held;
} span;

static int get_span(PyObject *o, span *s) {
    s->held = 0;
    if (PyBytes_CheckExact(o)) {
        s->ptr = (const uint8_t *)PyBytes_AS_STRING(o);
        s->len = (uint32_t)PyBytes_GET_SIZE(o);
    } else if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        s->ptr = (const uint8_t *)PyUnicode_AsUTF8AndSize(o, &n);
        if (!s->ptr) return -1;
        s->len = (uint32_t)n;
    } else {
        if (PyObject_GetBuffer(o, &s->view, PyBUF_SIMPLE) < 0) return -1;
        s->ptr = s->view.buf;
        s->len = (uint32_t)s->view.len;
        s->held = 1;
    }
    if (!s->len) s->ptr = NONNULL;
    return 0;
}
static void put_span(span *s) {
    if (s->held) PyBuffer_Release(&s->view);
}

static int get_u32(PyObject *o, uint32_t *out) {
    unsigned long v = PyLong_AsUnsignedLong(o);
    if (v == (unsigned long)-1 && PyErr_Occurred()) return -1;
    if (v > 0xFFFFFFFFul) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit in u32");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int nargs_ok(Py_ssize_t n, Py_ssize_t want, const char *fn) {
    if (n == want) return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", fn, want, n);
    return 0;
}

/* A growable scratch buffer: inserts need a writable copy of the row (the host writes the generated
   auto-inc values back into it) and iterators need somewhere to land. */
static uint8_t *scratch = NULL;
static uint32_t scratch_cap = 0;
static uint8_t *scratch_reserve(uint32_t n) {
    if (n < 64) n = 64;
    if (n > scratch_cap) {
        uint8_t *p = realloc(scratch, n);
        if (!p) {
            PyErr_NoMemory();
            return NULL;
        }
        scratch = p;
        scratch_cap = n;
    }
    return scratch;
}

static int sink_write_all(uint32_t sink, const uint8_t *p, uint32_t n) {
    while (n) {
        uint32_t k = n;
        int32_t rc = h_sink_write(sink, p, &k);
        if (rc) return rc;
        if (k == 0) return ERR_HOST_CALL_FAILURE; /* a sink that takes nothing would loop forever */
        p += k;
        n -= k;
    }
    return 0;
}

/* Reads a whole BytesSource.  One host call for small inputs (the common case), else sized by 10.1. */
static PyObject *read_source(uint32_t source) {
    if (source == 0) return PyBytes_FromStringAndSize(NULL, 0);
    uint8_t first[1024];
    uint32_t n = sizeof first;
    int32_t rc = h_source_read(source, first, &n);
    if (rc == -1) return PyBytes_FromStringAndSize((const char *)first, n);
    if (rc) return host_error(rc);
    uint32_t rest = 0;
    rc = h_source_remaining(source, &rest);
    if (rc) return host_error(rc);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n + rest);
    if (!out) return NULL;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    memcpy(dst, first, n);
    uint32_t have = n;
    for (;;) {
        uint32_t k = (uint32_t)PyBytes_GET_SIZE(out) - have;
        if (k == 0) { /* the source grew or lied about its length: grow and go on */
            if (_PyBytes_Resize(&out, PyBytes_GET_SIZE(out) * 2 + 64) < 0) return NULL;
            dst = (uint8_t *)PyBytes_AS_STRING(out);
            k = (uint32_t)PyBytes_GET_SIZE(out) - have;
        }
        rc = h_source_read(source, dst + have, &k);
        have += k;
        if (rc == -1) break;
        if (rc) {
            Py_DECREF(out);
            return host_error(rc);
        }
    }
    if ((Py_ssize_t)have != PyBytes_GET_SIZE(out) && _PyBytes_Resize(&out, have) < 0) return NULL;
    return out;
}

/* Drains a row iterator into one bytes object (concatenated BSATN rows). */
static PyObject *read_iter(uint32_t iter) {
    uint32_t have = 0;
    if (!scratch_reserve(64 * 1024)) return NULL;
    for (;;) {
        if (scratch_cap - have < 32 * 1024 + 1024 && !scratch_reserve(scratch_cap * 2)) {
            h_row_iter_close(iter);
            return NULL;
        }
        uint32_t k = scratch_cap - have;
        int32_t rc = h_row_iter_advance(iter, scratch + have, &k);
        if (rc == ERR_BUFFER_TOO_SMALL) { /* k = the size the next chunk needs */
            if (!scratch_reserve(have + k + 1024)) {
                h_row_iter_close(iter);
                return NULL;
            }
            continue;
        }
        if (rc != 0 && rc != -1) return host_error(rc);
        have += k;
        if (rc == -1) break;
    }
    return PyBytes_FromStringAndSize((const char *)scratch, have);
}

/* ---------------- _spacetime: the raw host door ---------------- */

static PyObject *st_table_id_from_name(PyObject *self, PyObject *name) {
    span s;
    uint32_t out = 0;
    if (get_span(name, &s) < 0) return NULL;
    int32_t rc = h_table_id_from_name(s.ptr, s.len, &out);
    put_span(&s);
    CHECK(rc);
    return PyLong_FromUnsignedLong(out);
}

static PyObject *st_index_id_from_name(PyObject *self, PyObject *name) {
    span s;
    uint32_t out = 0;
    if (get_span(name, &s) < 0) return NULL;
    int32_t rc = h_index_id_from_name(s.ptr, s.len, &out);
    put_span(&s);
    CHECK(rc);
    return PyLong_FromUnsignedLong(out);
}

static PyObject *st_table_row_count(PyObject *self, PyObject *table) {
    uint32_t t;
    uint64_t out = 0;
    if (get_u32(table, &t) < 0) return NULL;
    CHECK(h_table_row_count(t, &out));
    return PyLong_FromUnsignedLongLong(out);
}

static PyObject *st_table_scan(PyObject *self, PyObject *table) {
    uint32_t t, it = 0;
    if (get_u32(table, &t) < 0) return NULL;
    CHECK(h_table_scan(t, &it));
    return PyLong_FromUnsignedLong(it);
}

/* (index_id, prefix, prefix_elems, rstart, rend) — the shape shared by range scan and range delete. */
typedef int32_t (*range_fn)(uint32_t, const uint8_t *, uint32_t, uint32_t, const uint8_t *, uint32_t, const uint8_t *,
                            uint32_t, uint32_t *);
static PyObject *range_call(range_fn fn, PyObject *const *a, Py_ssize_t n, const char *name) {
    uint32_t index, elems, out = 0;
    span p, s, e;
    if (!nargs_ok(n, 5, name) || get_u32(a[0], &index) < 0 || get_u32(a[2], &elems) < 0) return NULL;
    if (get_span(a[1], &p) < 0) return NULL;
    if (get_span(a[3], &s) < 0) {
        put_span(&p);
        return NULL;
    }
    if (get_span(a[4], &e) < 0) {
        put_span(&p);
        put_span(&s);
        return NULL;
    }
    int32_t rc = fn(index, p.ptr, p.len, elems, s.ptr, s.len, e.ptr, e.len, &out);
    put_span(&p);
    put_span(&s);
    put_span(&e);
    CHECK(rc);
    return PyLong_FromUnsignedLong(out);
}
static PyObject *st_index_scan_range(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    return range_call(h_index_scan_range, a, n, "datastore_index_scan_range_bsatn");
}
static PyObject *st_delete_by_index_scan_range(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    return range_call(h_delete_by_index_scan_range, a, n, "datastore_delete_by_index_scan_range_bsatn");
}

typedef int32_t (*point_fn)(uint32_t, const uint8_t *, uint32_t, uint32_t *);
static PyObject *point_call(point_fn fn, PyObject *const *a, Py_ssize_t n, const char *name) {
    uint32_t id, out = 0;
    span s;
    if (!nargs_ok(n, 2, name) || get_u32(a[0], &id) < 0 || get_span(a[1], &s) < 0) return NULL;
    int32_t rc = fn(id, s.ptr, s.len, &out);
    put_span(&s);
    CHECK(rc);
    return PyLong_FromUnsignedLong(out);
}
static PyObject *st_delete_all_by_eq(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    return point_call(h_delete_all_by_eq, a, n, "datastore_delete_all_by_eq_bsatn");
}
static PyObject *st_index_scan_point(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    return point_call(h_index_scan_point, a, n, "datastore_index_scan_point_bsatn");
}
static PyObject *st_delete_by_index_scan_point(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    return point_call(h_delete_by_index_scan_point, a, n, "datastore_delete_by_index_scan_point_bsatn");
}

static PyObject *st_row_iter_read_all(PyObject *self, PyObject *iter) {
    uint32_t it;
    if (get_u32(iter, &it) < 0) return NULL;
    return read_iter(it);
}

static PyObject *st_row_iter_close(PyObject *self, PyObject *iter) {
    uint32_t it;
    if (get_u32(iter, &it) < 0) return NULL;
    CHECK(h_row_iter_close(it));
    Py_RETURN_NONE;
}

/* Insert/update: the host overwrites the buffer with the generated (auto-inc) column values. */
static PyObject *write_row(uint32_t table, int has_index, uint32_t index, PyObject *row) {
    span s;
    if (get_span(row, &s) < 0) return NULL;
    uint8_t *buf = scratch_reserve(s.len);
    if (!buf) {
        put_span(&s);
        return NULL;
    }
    memcpy(buf, s.ptr, s.len);
    uint32_t len = s.len;
    put_span(&s);
    int32_t rc = has_index ? h_update(table, index, buf, &len) : h_insert(table, buf, &len);
    CHECK(rc);
    return PyBytes_FromStringAndSize((const char *)buf, len);
}
static PyObject *st_insert(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    uint32_t t;
    if (!nargs_ok(n, 2, "datastore_insert_bsatn") || get_u32(a[0], &t) < 0) return NULL;
    return write_row(t, 0, 0, a[1]);
}
static PyObject *st_update(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    uint32_t t, i;
    if (!nargs_ok(n, 3, "datastore_update_bsatn") || get_u32(a[0], &t) < 0 || get_u32(a[1], &i) < 0) return NULL;
    return write_row(t, 1, i, a[2]);
}

static PyObject *st_clear(PyObject *self, PyObject *table) {
    uint32_t t;
    uint64_t out = 0;
    if (get_u32(table, &t) < 0) return NULL;
    CHECK(h_clear(t, &out));
    return PyLong_FromUnsignedLongLong(out);
}

static PyObject *st_bytes_sink_write(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    uint32_t sink;
    span s;
    if (!nargs_ok(n, 2, "bytes_sink_write") || get_u32(a[0], &sink) < 0 || get_span(a[1], &s) < 0) return NULL;
    int32_t rc = sink_write_all(sink, s.ptr, s.len);
    put_span(&s);
    CHECK(rc);
    Py_RETURN_NONE;
}

static PyObject *st_bytes_source_read_all(PyObject *self, PyObject *source) {
    uint32_t src;
    if (get_u32(source, &src) < 0) return NULL;
    return read_source(src);
}

static PyObject *st_bytes_source_remaining_length(PyObject *self, PyObject *source) {
    uint32_t src, out = 0;
    if (get_u32(source, &src) < 0) return NULL;
    CHECK(h_source_remaining(src, &out));
    return PyLong_FromUnsignedLong(out);
}

/* console_log(level, target, filename, line, message); target/filename may be None, line None = absent. */
static PyObject *st_console_log(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    uint32_t level, line = 0xFFFFFFFFu;
    span t = {NULL, 0}, f = {NULL, 0}, m;
    if (!nargs_ok(n, 5, "console_log") || get_u32(a[0], &level) < 0) return NULL;
    if (a[3] != Py_None && get_u32(a[3], &line) < 0) return NULL;
    if (a[1] != Py_None && get_span(a[1], &t) < 0) return NULL;
    if (a[2] != Py_None && get_span(a[2], &f) < 0) return NULL;
    if (get_span(a[4], &m) < 0) return NULL;
    h_console_log(level, a[1] == Py_None ? NULL : t.ptr, t.len, a[2] == Py_None ? NULL : f.ptr, f.len, line, m.ptr,
                  m.len);
    if (a[1] != Py_None) put_span(&t);
    if (a[2] != Py_None) put_span(&f);
    put_span(&m);
    Py_RETURN_NONE;
}

static PyObject *st_console_timer_start(PyObject *self, PyObject *name) {
    span s;
    if (get_span(name, &s) < 0) return NULL;
    uint32_t id = h_timer_start(s.ptr, s.len);
    put_span(&s);
    return PyLong_FromUnsignedLong(id);
}

static PyObject *st_console_timer_end(PyObject *self, PyObject *timer) {
    uint32_t id;
    if (get_u32(timer, &id) < 0) return NULL;
    CHECK(h_timer_end(id));
    Py_RETURN_NONE;
}

static PyObject *st_identity(PyObject *self, PyObject *unused) {
    uint8_t out[32];
    h_identity(out);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyObject *st_schedule_immediate(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    span name, args;
    if (!nargs_ok(n, 2, "volatile_nonatomic_schedule_immediate") || get_span(a[0], &name) < 0) return NULL;
    if (get_span(a[1], &args) < 0) {
        put_span(&name);
        return NULL;
    }
    h_schedule_immediate(name.ptr, name.len, args.ptr, args.len);
    put_span(&name);
    put_span(&args);
    Py_RETURN_NONE;
}

/* get_jwt(connection_id: 16 bytes) -> bytes | None (the JWT payload the host stored for it). */
static PyObject *st_get_jwt(PyObject *self, PyObject *conn) {
    span s;
    uint32_t src = 0;
    if (get_span(conn, &s) < 0) return NULL;
    if (s.len != 16) {
        put_span(&s);
        PyErr_SetString(PyExc_ValueError, "connection id must be 16 bytes");
        return NULL;
    }
    int32_t rc = h_get_jwt(s.ptr, &src);
    put_span(&s);
    CHECK(rc);
    if (!src) Py_RETURN_NONE;
    return read_source(src);
}

static PyObject *st_sleep_until(PyObject *self, PyObject *when) {
    long long us = PyLong_AsLongLong(when);
    if (us == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(h_sleep_until(us));
}

static PyObject *st_start_mut_tx(PyObject *self, PyObject *unused) {
    int64_t ts = 0;
    CHECK(h_start_mut_tx(&ts));
    return PyLong_FromLongLong(ts);
}
static PyObject *st_commit_mut_tx(PyObject *self, PyObject *unused) {
    CHECK(h_commit_mut_tx());
    Py_RETURN_NONE;
}
static PyObject *st_abort_mut_tx(PyObject *self, PyObject *unused) {
    CHECK(h_abort_mut_tx());
    Py_RETURN_NONE;
}

/* procedure_http_request(request_bsatn, body) -> (response_bsatn, body); on a transport failure raises
   HostError(21, error_bsatn). */
static PyObject *st_http_request(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    span req, body;
    uint32_t out[2] = {0, 0};
    if (!nargs_ok(n, 2, "procedure_http_request") || get_span(a[0], &req) < 0) return NULL;
    if (get_span(a[1], &body) < 0) {
        put_span(&req);
        return NULL;
    }
    int32_t rc = h_http_request(req.ptr, req.len, body.ptr, body.len, out);
    put_span(&req);
    put_span(&body);
    if (rc == 21) {
        PyObject *msg = read_source(out[0]);
        if (!msg) return NULL;
        PyObject *args = Py_BuildValue("(iN)", rc, msg);
        if (args) PyErr_SetObject(HostError, args);
        Py_XDECREF(args);
        return NULL;
    }
    CHECK(rc);
    PyObject *head = read_source(out[0]);
    if (!head) return NULL;
    PyObject *data = read_source(out[1]);
    if (!data) {
        Py_DECREF(head);
        return NULL;
    }
    return Py_BuildValue("(NN)", head, data);
}

static PyObject *st_now(PyObject *self, PyObject *unused) { return PyLong_FromUnsignedLongLong(stdb_now_us); }

/* ---- build-time only (the snapshotter serves these handles; a real host never sees them) ---- */
static PyObject *st_build_ask(PyObject *self, PyObject *const *a, Py_ssize_t n) {
    span q;
    if (!nargs_ok(n, 1, "_build_ask") || get_span(a[0], &q) < 0) return NULL;
    int32_t rc = sink_write_all(BUILD_ASK_SINK, q.ptr, q.len);
    put_span(&q);
    CHECK(rc);
    return read_source(BUILD_ANSWER_SOURCE);
}

static PyMethodDef st_methods[] = {
    {"table_id_from_name", st_table_id_from_name, METH_O, NULL},
    {"index_id_from_name", st_index_id_from_name, METH_O, NULL},
    {"datastore_table_row_count", st_table_row_count, METH_O, NULL},
    {"datastore_table_scan_bsatn", st_table_scan, METH_O, NULL},
    {"datastore_index_scan_range_bsatn", (PyCFunction)(void (*)(void))st_index_scan_range, METH_FASTCALL, NULL},
    {"datastore_delete_by_index_scan_range_bsatn", (PyCFunction)(void (*)(void))st_delete_by_index_scan_range,
     METH_FASTCALL, NULL},
    {"datastore_delete_all_by_eq_bsatn", (PyCFunction)(void (*)(void))st_delete_all_by_eq, METH_FASTCALL, NULL},
    {"row_iter_read_all", st_row_iter_read_all, METH_O, "drain a row iterator (row_iter_bsatn_advance loop)"},
    {"row_iter_bsatn_close", st_row_iter_close, METH_O, NULL},
    {"datastore_insert_bsatn", (PyCFunction)(void (*)(void))st_insert, METH_FASTCALL,
     "insert a row; returns the generated column values (BSATN)"},
    {"datastore_update_bsatn", (PyCFunction)(void (*)(void))st_update, METH_FASTCALL, NULL},
    {"bytes_sink_write", (PyCFunction)(void (*)(void))st_bytes_sink_write, METH_FASTCALL, NULL},
    {"bytes_source_read_all", st_bytes_source_read_all, METH_O, NULL},
    {"bytes_source_remaining_length", st_bytes_source_remaining_length, METH_O, NULL},
    {"console_log", (PyCFunction)(void (*)(void))st_console_log, METH_FASTCALL,
     "console_log(level, target, filename, line, message)"},
    {"console_timer_start", st_console_timer_start, METH_O, NULL},
    {"console_timer_end", st_console_timer_end, METH_O, NULL},
    {"identity", st_identity, METH_NOARGS, NULL},
    {"volatile_nonatomic_schedule_immediate", (PyCFunction)(void (*)(void))st_schedule_immediate, METH_FASTCALL,
     NULL},
    {"get_jwt", st_get_jwt, METH_O, NULL},
    {"procedure_sleep_until", st_sleep_until, METH_O, NULL},
    {"procedure_start_mut_tx", st_start_mut_tx, METH_NOARGS, NULL},
    {"procedure_commit_mut_tx", st_commit_mut_tx, METH_NOARGS, NULL},
    {"procedure_abort_mut_tx", st_abort_mut_tx, METH_NOARGS, NULL},
    {"procedure_http_request", (PyCFunction)(void (*)(void))st_http_request, METH_FASTCALL, NULL},
    {"datastore_index_scan_point_bsatn", (PyCFunction)(void (*)(void))st_index_scan_point, METH_FASTCALL, NULL},
    {"datastore_delete_by_index_scan_point_bsatn", (PyCFunction)(void (*)(void))st_delete_by_index_scan_point,
     METH_FASTCALL, NULL},
    {"datastore_clear", st_clear, METH_O, NULL},
    {"now_micros", st_now, METH_NOARGS, "the timestamp of the current call (µs since the Unix epoch)"},
    {"_build_ask", (PyCFunction)(void (*)(void))st_build_ask, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef st_module = {PyModuleDef_HEAD_INIT, "_spacetime",
                                       "Raw SpacetimeDB host imports (spacetime_10.x). Use module_sdk instead.", -1,
                                       st_methods};

static PyObject *PyInit__spacetime(void) {
    PyObject *m = PyModule_Create(&st_module);
    if (!m) return NULL;
    if (!HostError) {
        HostError = PyErr_NewException("_spacetime.HostError", NULL, NULL);
        if (!HostError) return NULL;
    }
    Py_INCREF(HostError);
    if (PyModule_AddObject(m, "HostError", HostError) < 0) return NULL;
    return m;
}

/* ---------------- interpreter lifecycle ---------------- */

enum { FN_DESCRIBE, FN_REDUCER, FN_PROCEDURE, FN_VIEW, FN_VIEW_ANON, FN_HTTP, FN_COUNT };
static PyObject *dispatch[FN_COUNT];
/* spacetime_core's Timestamp and its `_tsm` slot, found once by stdb_build_init: reducers and procedures get the
   call's timestamp as a Timestamp built here (~0.35 µs less per call than building it in Python in wasm). */
static PyTypeObject *ts_type;
static PyObject *ts_slot;
static int py_ready = 0;

static void log_text(uint32_t level, const char *s, size_t n) {
    h_console_log(level, (const uint8_t *)"python", 6, NULL, 0, 0xFFFFFFFFu, (const uint8_t *)(n ? s : "?"),
                  (uint32_t)(n ? n : 1));
}

/* Formats the pending exception as "Type: message" (UTF-8, PyMem-allocated) and clears it. */
static char *take_exception(size_t *len) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    PyObject *s = NULL;
    if (v) {
        PyObject *name = t ? PyObject_GetAttrString(t, "__name__") : NULL;
        PyObject *msg = PyObject_Str(v);
        if (name && msg) s = PyUnicode_FromFormat("%U: %U", name, msg);
        Py_XDECREF(name);
        Py_XDECREF(msg);
    }
    PyErr_Clear();
    Py_ssize_t n = 0;
    const char *c = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!c) {
        PyErr_Clear();
        c = "python exception (unprintable)";
        n = (Py_ssize_t)strlen(c);
    }
    char *out = PyMem_Malloc(n + 1);
    if (out) {
        memcpy(out, c, n);
        out[n] = 0;
    }
    *len = out ? (size_t)n : 0;
    Py_XDECREF(s);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    return out;
}

static void report_exception(uint32_t sink) {
    size_t n;
    char *msg = take_exception(&n);
    if (sink) sink_write_all(sink, (const uint8_t *)(msg ? msg : "?"), msg ? (uint32_t)n : 1);
    else log_text(LEVEL_ERROR, msg, n);
    PyMem_Free(msg);
}

/* While stdb_build_init runs, free() zeroes every block (runtime/alloc.c): the snapshot stores every non-zero
   byte of linear memory, and memory freed while the module was being imported (the compiler's garbage,
   temporaries, resized lists and dicts, the freelists emptied by the final collection) would otherwise keep
   its old bytes.  It is switched off before the snapshot, so a running module frees at full speed. */
extern int stdb_alloc_zero_free;

/* The runtime's own frozen-module table (generated by build/runtime.py) zeroes the bootstrap's marshal data
   here once it has been unmarshalled; with libpython's frozen modules this weak default does nothing. */
__attribute__((weak)) void stdb_frozen_release(void) {}
extern void stdb_unpack(void); /* unpack.c: the snapshot heap, decompressed on an instance's first call */
extern void _PyAST_Fini(PyInterpreterState *interp);

/* -OO for builtins: libpython's docstrings (static data, plus the str copies PyType_Ready and module init put in
   the dicts) would be ~0.2 MB of every snapshot.  The doc text is zeroed in place; a "name(sig)\n--\n\n" prefix
   (__text_signature__, read by inspect.signature) is kept, exactly as CPython's skip_signature finds it. */
static void strip_doc(const char *doc) {
    uintptr_t a = (uintptr_t)doc;
    if (a < 1024 || a >= (uintptr_t)__builtin_wasm_memory_size(0) * 65536u) return; /* NULL or not in memory */
    char *body = (char *)doc;
    for (const char *q = doc; *q; q++) {
        if (*q == ')' && !strncmp(q, ")\n--\n\n", 6)) {
            body = (char *)q + 6;
            break;
        }
        if (*q == '\n' && q[1] == '\n') break;
    }
    /* a one-word doc ("inode") may be the same literal as a name the linker merged with it: keep those */
    if (!strchr(body, ' ')) return;
    memset(body, 0, strlen(body));
}
static void strip_methods(PyMethodDef *m) {
    for (; m && m->ml_name; m++) strip_doc(m->ml_doc);
}
static void drop_dict_doc(PyObject *d) {
    PyObject *doc = d ? PyDict_GetItemString(d, "__doc__") : NULL;
    if (doc && PyUnicode_Check(doc) && PyDict_SetItemString(d, "__doc__", Py_None) < 0) PyErr_Clear();
}
static void strip_type(PyTypeObject *t) {
    if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) { /* a Python class keeps its docstring (user code keeps them) */
        strip_doc(t->tp_doc);
        drop_dict_doc(t->tp_dict); /* static types read __doc__ from tp_doc; the dict copy is dead weight */
    }
    strip_methods(t->tp_methods);
    for (PyGetSetDef *g = t->tp_getset; g && g->name; g++) strip_doc(g->doc);
    for (PyMemberDef *m = t->tp_members; m && m->name; m++) strip_doc(m->doc);
    if (t->tp_dict) { /* slot wrappers (__add__...) point into typeobject.c's slotdefs */
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(t->tp_dict, &pos, &k, &v))
            if (Py_IS_TYPE(v, &PyWrapperDescr_Type)) strip_doc(((PyWrapperDescrObject *)v)->d_base->doc);
    }
    PyType_Modified(t);
}
static void strip_types(PyObject *t, PyObject *subclasses, PyObject *seen) {
    if (PySet_Contains(seen, t) != 0 || PySet_Add(seen, t) < 0) return;
    strip_type((PyTypeObject *)t);
    PyObject *subs = PyObject_CallOneArg(subclasses, t);
    if (!subs) return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subs); i++) strip_types(PyList_GET_ITEM(subs, i), subclasses, seen);
    Py_DECREF(subs);
}
static void strip_builtin_docs(void) {
    PyObject *seen = PySet_New(NULL);
    PyObject *subclasses = PyObject_GetAttrString((PyObject *)&PyType_Type, "__subclasses__");
    if (seen && subclasses) strip_types((PyObject *)&PyBaseObject_Type, subclasses, seen);
    Py_XDECREF(subclasses);
    Py_XDECREF(seen);
    PyObject *mods = PyDict_Values(PyImport_GetModuleDict());
    for (Py_ssize_t i = 0; mods && i < PyList_GET_SIZE(mods); i++) {
        PyObject *m = PyList_GET_ITEM(mods, i);
        PyModuleDef *def = PyModule_Check(m) ? PyModule_GetDef(m) : NULL;
        if (!def) continue;
        strip_doc(def->m_doc);
        strip_methods(def->m_methods);
        drop_dict_doc(PyModule_GetDict(m));
    }
    Py_XDECREF(mods);
    PyErr_Clear();
}

static const char NOT_READY[] = "the Python runtime was not initialized (module was not built by spacetime-py build)";

/* Called once by the build.  The boot script (served by the build host) installs the importer, imports
   the user's module and returns the dispatch callables.  Returns 0 on success; on failure the boot script
   has already reported the error to the build host. */
EXPORT("stdb_build_init") int32_t stdb_build_init(void) {
    if (py_ready) return 0;
    stdb_alloc_zero_free = 1;
    PyImport_AppendInittab("_spacetime", PyInit__spacetime);
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.install_signal_handlers = 0;
    config.write_bytecode = 0;
    config.pathconfig_warnings = 0;
    config.use_frozen_modules = 1;
    config.buffered_stdio = 0;
    config.use_hash_seed = 1; /* reproducible builds: same inputs, same snapshot */
    config.hash_seed = 0;
    config.module_search_paths_set = 1; /* empty sys.path: everything comes from frozen, builtin or bundle */
    config._init_main = 0;              /* the bundle importer must exist before `encodings` is imported */
    PyStatus st = PyConfig_SetString(&config, &config.program_name, L"python");
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        const char *m = st.err_msg ? st.err_msg : "Py_InitializeFromConfig failed";
        log_text(LEVEL_ERROR, m, strlen(m));
        return 1;
    }
    /* Stage 1: compile and run the boot script; it defines install() and main(). */
    PyObject *mod = PyImport_ImportModule("_spacetime");
    PyObject *boot_src = NULL, *g = NULL, *code = NULL, *r = NULL;
    if (!mod) goto fail;
    boot_src = PyObject_CallMethod(mod, "_build_ask", "s", "?boot");
    Py_DECREF(mod);
    if (!boot_src) goto fail;
    code = Py_CompileString(PyBytes_AsString(boot_src), "<spacetime-py boot>", Py_file_input);
    Py_DECREF(boot_src);
    if (!code) goto fail;
    g = PyDict_New();
    if (!g || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0) goto fail;
    PyDict_SetItemString(g, "__name__", PyUnicode_FromString("_spacetime_boot"));
    r = PyEval_EvalCode(code, g, g);
    Py_CLEAR(code);
    if (!r) goto fail;
    Py_CLEAR(r);
    {
        PyObject *install = PyDict_GetItemString(g, "install");
        if (!install) goto fail;
        r = PyObject_CallNoArgs(install);
        if (!r) goto fail;
        Py_CLEAR(r);
    }
    st = _Py_InitializeMain();
    if (PyStatus_Exception(st)) {
        const char *m = st.err_msg ? st.err_msg : "_Py_InitializeMain failed";
        log_text(LEVEL_ERROR, m, strlen(m));
        return 1;
    }
    /* Stage 2: main() imports the user's module and returns a tuple of FN_COUNT callables (or None). */
    {
        PyObject *main_fn = PyDict_GetItemString(g, "main");
        if (!main_fn) goto fail;
        r = PyObject_CallNoArgs(main_fn);
    }
    if (!r) goto fail;
    if (r == Py_None) { /* the boot script reported the error itself */
        Py_DECREF(r);
        Py_DECREF(g);
        return 1;
    }
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != FN_COUNT) {
        PyErr_SetString(PyExc_TypeError, "boot main() must return a tuple of dispatch callables");
        goto fail;
    }
    for (int i = 0; i < FN_COUNT; i++) {
        PyObject *f = PyTuple_GET_ITEM(r, i);
        dispatch[i] = f == Py_None ? NULL : f;
        Py_XINCREF(dispatch[i]);
    }
    Py_CLEAR(r);
    {
        PyObject *vals = PyImport_ImportModule("spacetime_core.sats.values");
        PyObject *tp = vals ? PyObject_GetAttrString(vals, "Timestamp") : NULL;
        Py_XDECREF(vals);
        if (!tp) goto fail;
        ts_slot = PyType_Check(tp) ? PyObject_GetAttrString(tp, "_tsm") : NULL;
        if (!ts_slot || !Py_TYPE(ts_slot)->tp_descr_set) {
            Py_DECREF(tp);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Timestamp has no settable _tsm slot");
            goto fail;
        }
        ts_type = (PyTypeObject *)tp; /* kept for the interpreter's lifetime, like the dispatch callables */
    }
    PyDict_Clear(g);
    Py_DECREF(g);
    {
        PyObject *ast = PyDict_GetItemString(PyImport_GetModuleDict(), "_ast");
        if (!ast) _PyAST_Fini(PyInterpreterState_Get());
    }
    strip_builtin_docs();
    PyType_ClearCache(); /* the 48 KB method cache refills at run time */
    PyGC_Collect();
    stdb_frozen_release();
    stdb_alloc_zero_free = 0;
    py_ready = 1;
    return 0;
fail:
    Py_XDECREF(code);
    Py_XDECREF(r);
    Py_XDECREF(g);
    report_exception(0);
    return 1;
}

/* ---------------- the SpacetimeDB module ABI ---------------- */

static int write_result(uint32_t sink, PyObject *r) {
    char *p;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(r, &p, &n) < 0) return -1;
    return sink_write_all(sink, (const uint8_t *)p, (uint32_t)n) ? -1 : 0;
}

/* Interprets a dispatch result: None = ok; str = user error (written to `sink`, returns 1). */
static int32_t finish_call(PyObject *r, uint32_t sink) {
    if (!r) {
        report_exception(sink);
        return ERR_HOST_CALL_FAILURE;
    }
    int32_t code = 0;
    if (PyUnicode_Check(r)) {
        Py_ssize_t n;
        const char *c = PyUnicode_AsUTF8AndSize(r, &n);
        if (c) sink_write_all(sink, (const uint8_t *)c, (uint32_t)n);
        else report_exception(sink);
        code = ERR_HOST_CALL_FAILURE;
    }
    Py_DECREF(r);
    return code;
}

/* A Timestamp of `us`, as _mk_timestamp builds it (no __init__). */
static PyObject *timestamp_obj(int64_t us) {
    PyObject *v = PyLong_FromLongLong(us);
    if (!v) return NULL;
    PyObject *t = ts_type->tp_alloc(ts_type, 0);
    if (t && Py_TYPE(ts_slot)->tp_descr_set(ts_slot, t, v) < 0) Py_CLEAR(t);
    Py_DECREF(v);
    return t;
}

static PyObject *identity_bytes(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t v[4] = {a, b, c, d}; /* wasm is little-endian: the words are the LE byte array */
    return PyBytes_FromStringAndSize((const char *)v, 32);
}

EXPORT("__describe_module__") void describe_module(uint32_t sink) {
    stdb_unpack();
    if (!py_ready || !dispatch[FN_DESCRIBE]) {
        log_text(LEVEL_ERROR, NOT_READY, sizeof NOT_READY - 1);
        return;
    }
    PyObject *r = PyObject_CallNoArgs(dispatch[FN_DESCRIBE]);
    if (!r || write_result(sink, r) < 0) report_exception(0);
    Py_XDECREF(r);
}

static int32_t call_function(int fn, uint32_t id, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3, uint64_t c0,
                             uint64_t c1, uint64_t ts, uint32_t args, uint32_t sink) {
    stdb_unpack();
    if (!py_ready || !dispatch[fn]) {
        sink_write_all(sink, (const uint8_t *)NOT_READY, sizeof NOT_READY - 1);
        return ERR_HOST_CALL_FAILURE;
    }
    stdb_now_us = ts;
    PyObject *argv[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    uint64_t conn[2] = {c0, c1};
    argv[1] = PyLong_FromUnsignedLong(id);
    argv[2] = identity_bytes(s0, s1, s2, s3);
    argv[3] = PyBytes_FromStringAndSize((const char *)conn, 16);
    argv[4] = timestamp_obj((int64_t)ts);
    argv[5] = read_source(args);
    PyObject *r = NULL;
    if (argv[1] && argv[2] && argv[3] && argv[4] && argv[5])
        r = PyObject_Vectorcall(dispatch[fn], argv + 1, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    for (int i = 1; i < 6; i++) Py_XDECREF(argv[i]);
    if (fn == FN_PROCEDURE) {
        /* Upstream's host accepts only 0 or a trap from __call_procedure__ (like Rust's panic and C#'s rethrow):
           the dispatcher has logged why it failed (str result); an escaped exception is logged here. */
        if (r && PyBytes_Check(r) && write_result(sink, r) == 0) {
            Py_DECREF(r);
            return 0;
        }
        if (!r || PyErr_Occurred()) report_exception(0);
        Py_XDECREF(r);
        __builtin_trap();
    }
    return finish_call(r, sink);
}

EXPORT("__call_reducer__") int32_t call_reducer(uint32_t id, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3,
                                                uint64_t c0, uint64_t c1, uint64_t ts, uint32_t args,
                                                uint32_t err_sink) {
    return call_function(FN_REDUCER, id, s0, s1, s2, s3, c0, c1, ts, args, err_sink);
}

EXPORT("__call_procedure__") int32_t call_procedure(uint32_t id, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3,
                                                    uint64_t c0, uint64_t c1, uint64_t ts, uint32_t args,
                                                    uint32_t result_sink) {
    return call_function(FN_PROCEDURE, id, s0, s1, s2, s3, c0, c1, ts, args, result_sink);
}

/* Views return (code, bytes): code 2 = ViewResultHeader + rows, 1 = error message. */
static int32_t finish_view(PyObject *r, uint32_t sink) {
    if (!r) {
        report_exception(sink);
        return ERR_HOST_CALL_FAILURE;
    }
    if (PyUnicode_Check(r)) return finish_call(r, sink);
    long code = -1;
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2) code = PyLong_AsLong(PyTuple_GET_ITEM(r, 0));
    if (code < 0 || write_result(sink, PyTuple_GET_ITEM(r, 1)) < 0) {
        Py_DECREF(r);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "view dispatch must return (code, bytes)");
        report_exception(sink);
        return ERR_HOST_CALL_FAILURE;
    }
    Py_DECREF(r);
    return (int32_t)code;
}

EXPORT("__call_view__") int32_t call_view(uint32_t id, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3,
                                          uint32_t args, uint32_t sink) {
    stdb_unpack();
    if (!py_ready || !dispatch[FN_VIEW]) {
        sink_write_all(sink, (const uint8_t *)NOT_READY, sizeof NOT_READY - 1);
        return ERR_HOST_CALL_FAILURE;
    }
    PyObject *sender = identity_bytes(s0, s1, s2, s3);
    PyObject *a = read_source(args);
    PyObject *r = sender && a ? PyObject_CallFunction(dispatch[FN_VIEW], "kOO", (unsigned long)id, sender, a) : NULL;
    Py_XDECREF(sender);
    Py_XDECREF(a);
    return finish_view(r, sink);
}

EXPORT("__call_view_anon__") int32_t call_view_anon(uint32_t id, uint32_t args, uint32_t sink) {
    stdb_unpack();
    if (!py_ready || !dispatch[FN_VIEW_ANON]) {
        sink_write_all(sink, (const uint8_t *)NOT_READY, sizeof NOT_READY - 1);
        return ERR_HOST_CALL_FAILURE;
    }
    PyObject *a = read_source(args);
    PyObject *r = a ? PyObject_CallFunction(dispatch[FN_VIEW_ANON], "kO", (unsigned long)id, a) : NULL;
    Py_XDECREF(a);
    return finish_view(r, sink);
}

/* HTTP handlers: dispatch returns (response BSATN, body bytes); anything else is a failure (code 1, which the
   host answers with 500).  The dispatcher turns exceptions in the handler into 500 responses itself. */
EXPORT("__call_http_handler__") int32_t call_http_handler(uint32_t id, uint64_t ts, uint32_t request,
                                                          uint32_t body, uint32_t response_sink,
                                                          uint32_t body_sink) {
    stdb_unpack();
    if (!py_ready || !dispatch[FN_HTTP]) {
        log_text(LEVEL_ERROR, NOT_READY, sizeof NOT_READY - 1);
        return ERR_HOST_CALL_FAILURE;
    }
    stdb_now_us = ts;
    PyObject *req = read_source(request);
    PyObject *b = req ? read_source(body) : NULL;
    PyObject *r = req && b ? PyObject_CallFunction(dispatch[FN_HTTP], "kLOO", (unsigned long)id, (long long)ts, req, b)
                           : NULL;
    Py_XDECREF(req);
    Py_XDECREF(b);
    if (r && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2 && write_result(response_sink, PyTuple_GET_ITEM(r, 0)) == 0
        && write_result(body_sink, PyTuple_GET_ITEM(r, 1)) == 0) {
        Py_DECREF(r);
        return 0;
    }
    if (r && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "http dispatch must return (bytes, bytes)");
    Py_XDECREF(r);
    report_exception(0);
    return ERR_HOST_CALL_FAILURE;
}
