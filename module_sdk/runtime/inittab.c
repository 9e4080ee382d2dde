/* Builtin C extension modules linked into the runtime.  Modules whose stdlib wrapper has a pure-Python
   fallback (datetime, json, heapq, bisect, statistics) are left out to keep every module small. */
#include "Python.h"

extern PyObject *PyInit__abc(void);
extern PyObject *PyInit__codecs(void);
extern PyObject *PyInit__collections(void);
extern PyObject *PyInit__functools(void);
extern PyObject *PyInit__imp(void);
extern PyObject *PyInit__io(void);
extern PyObject *PyInit__operator(void);
extern PyObject *PyInit__signal(void);
extern PyObject *PyInit__sre(void);
extern PyObject *PyInit__stat(void);
extern PyObject *PyInit__string(void);
extern PyObject *PyInit__thread(void);
extern PyObject *PyInit__tokenize(void);
extern PyObject *PyInit__typing(void);
extern PyObject *PyInit__weakref(void);
extern PyObject *PyInit__opcode(void);
extern PyObject *PyInit__ast(void);
extern PyObject *PyInit_errno(void);
extern PyObject *PyInit_gc(void);
extern PyObject *PyInit_itertools(void);
extern PyObject *PyMarshal_Init(void);
extern PyObject *PyInit_posix(void);
extern PyObject *PyInit_time(void);
extern PyObject *PyInit_atexit(void);
extern PyObject *_PyWarnings_Init(void);
extern PyObject *PyInit__struct(void);
extern PyObject *PyInit_math(void);
extern PyObject *PyInit__contextvars(void);
extern PyObject *PyInit__random(void);
extern PyObject *PyInit_binascii(void);
extern PyObject *PyInit__md5(void);
extern PyObject *PyInit__sha1(void);
extern PyObject *PyInit__sha256(void);
extern PyObject *PyInit__sha512(void);
extern PyObject *PyInit__sha3(void);
extern PyObject *PyInit__blake2(void);

struct _inittab _PyImport_Inittab[] = {
    {"_abc", PyInit__abc},
    {"_codecs", PyInit__codecs},
    {"_collections", PyInit__collections},
    {"_functools", PyInit__functools},
    {"_imp", PyInit__imp},
    {"_io", PyInit__io},
    {"_operator", PyInit__operator},
    {"_signal", PyInit__signal},
    {"_sre", PyInit__sre},
    {"_stat", PyInit__stat},
    {"_string", PyInit__string},
    {"_thread", PyInit__thread},
    {"_tokenize", PyInit__tokenize},
    {"_typing", PyInit__typing},
    {"_weakref", PyInit__weakref},
    {"_opcode", PyInit__opcode},
    {"_ast", PyInit__ast},
    {"errno", PyInit_errno},
    {"gc", PyInit_gc},
    {"itertools", PyInit_itertools},
    {"marshal", PyMarshal_Init},
    {"posix", PyInit_posix},
    {"time", PyInit_time},
    {"atexit", PyInit_atexit},
    {"_warnings", _PyWarnings_Init},
    {"_struct", PyInit__struct},
    {"math", PyInit_math},
    {"_contextvars", PyInit__contextvars},
    {"_random", PyInit__random},
    {"binascii", PyInit_binascii},
    {"_md5", PyInit__md5},
    {"_sha1", PyInit__sha1},
    {"_sha256", PyInit__sha256},
    {"_sha512", PyInit__sha512},
    {"_sha3", PyInit__sha3},
    {"_blake2", PyInit__blake2},
    {"builtins", NULL},
    {"sys", NULL},
    {0, 0}};
