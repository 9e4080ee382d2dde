/* WASI preview1 defined inside the module, so the final .wasm imports nothing but spacetime_10.x.
 *
 * wasi-libc calls `__imported_wasi_snapshot_preview1_<name>` for every WASI function; defining those
 * symbols here resolves them at link time (the technique the C# and C++ SpacetimeDB SDKs use).
 * Behaviour: stdout/stderr go to console_log, clocks read the current call's timestamp (reducers must
 * be deterministic), randomness is a fixed-seed generator, and there is no filesystem.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WASI(name) __imported_wasi_snapshot_preview1_##name
enum { OK = 0, E_BADF = 8, E_INVAL = 28, E_NOENT = 44, E_NOSYS = 52, E_NOTSUP = 58, E_SPIPE = 70 };

__attribute__((import_module("spacetime_10.0"), import_name("console_log"))) void
h_console_log(uint32_t, const uint8_t *, uint32_t, const uint8_t *, uint32_t, uint32_t, const uint8_t *, uint32_t);

extern uint64_t stdb_now_us;

int32_t WASI(args_sizes_get)(uint32_t *argc, uint32_t *size) {
    *argc = 0;
    *size = 0;
    return OK;
}
int32_t WASI(args_get)(int32_t argv, int32_t buf) { return OK; }
int32_t WASI(environ_sizes_get)(uint32_t *n, uint32_t *size) {
    *n = 0;
    *size = 0;
    return OK;
}
int32_t WASI(environ_get)(int32_t env, int32_t buf) { return OK; }
int32_t WASI(clock_res_get)(int32_t id, uint64_t *res) {
    *res = 1000;
    return OK;
}
int32_t WASI(clock_time_get)(int32_t id, int64_t precision, uint64_t *t) {
    *t = stdb_now_us * 1000u;
    return OK;
}

typedef struct {
    const uint8_t *buf;
    uint32_t len;
} ciovec;

/* Each write becomes one log record (a trailing newline is dropped); stderr is Warn, stdout Info. */
int32_t WASI(fd_write)(int32_t fd, const ciovec *iovs, int32_t n, uint32_t *written) {
    if (fd != 1 && fd != 2) return E_BADF;
    uint32_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint32_t len = iovs[i].len, l = len;
        if (l && iovs[i].buf[l - 1] == '\n') l--;
        if (l) h_console_log(fd == 2 ? 1 : 2, (const uint8_t *)"python", 6, NULL, 0, 0xFFFFFFFFu, iovs[i].buf, l);
        total += len;
    }
    *written = total;
    return OK;
}
int32_t WASI(fd_read)(int32_t fd, int32_t iovs, int32_t n, uint32_t *nread) {
    *nread = 0;
    return fd <= 2 ? OK : E_BADF;
}
int32_t WASI(fd_pread)(int32_t fd, int32_t iovs, int32_t n, int64_t off, uint32_t *nread) { return E_BADF; }
int32_t WASI(fd_pwrite)(int32_t fd, int32_t iovs, int32_t n, int64_t off, uint32_t *nw) { return E_BADF; }

typedef struct {
    uint8_t filetype;
    uint16_t flags;
    uint64_t rights_base, rights_inheriting;
} fdstat;
int32_t WASI(fd_fdstat_get)(int32_t fd, fdstat *st) {
    if (fd < 0 || fd > 2) return E_BADF;
    memset(st, 0, sizeof *st);
    st->filetype = 2; /* character device */
    st->rights_base = st->rights_inheriting = ~0ull;
    return OK;
}
int32_t WASI(fd_fdstat_set_flags)(int32_t fd, int32_t flags) { return fd <= 2 ? OK : E_BADF; }
int32_t WASI(fd_fdstat_set_rights)(int32_t fd, int64_t a, int64_t b) { return fd <= 2 ? OK : E_BADF; }
typedef struct {
    uint64_t dev, ino;
    uint8_t filetype;
    uint64_t nlink, size, atim, mtim, ctim;
} filestat;
int32_t WASI(fd_filestat_get)(int32_t fd, filestat *st) {
    if (fd < 0 || fd > 2) return E_BADF;
    memset(st, 0, sizeof *st);
    st->filetype = 2;
    st->nlink = 1;
    return OK;
}
int32_t WASI(fd_prestat_get)(int32_t fd, int32_t p) { return E_BADF; } /* no preopens: ends libc's scan */
int32_t WASI(fd_prestat_dir_name)(int32_t fd, int32_t p, int32_t l) { return E_BADF; }
int32_t WASI(fd_close)(int32_t fd) { return OK; }
int32_t WASI(fd_seek)(int32_t fd, int64_t off, int32_t whence, uint64_t *pos) { return fd <= 2 ? E_SPIPE : E_BADF; }
int32_t WASI(fd_tell)(int32_t fd, uint64_t *pos) { return fd <= 2 ? E_SPIPE : E_BADF; }
int32_t WASI(fd_sync)(int32_t fd) { return OK; }
int32_t WASI(fd_datasync)(int32_t fd) { return OK; }
int32_t WASI(fd_advise)(int32_t fd, int64_t off, int64_t len, int32_t advice) { return OK; }
int32_t WASI(fd_allocate)(int32_t fd, int64_t off, int64_t len) { return E_NOTSUP; }
int32_t WASI(fd_filestat_set_size)(int32_t fd, int64_t size) { return E_NOTSUP; }
int32_t WASI(fd_filestat_set_times)(int32_t fd, int64_t a, int64_t m, int32_t flags) { return E_NOTSUP; }
int32_t WASI(fd_readdir)(int32_t fd, int32_t buf, int32_t len, int64_t cookie, int32_t used) { return E_BADF; }
int32_t WASI(fd_renumber)(int32_t from, int32_t to) { return E_NOTSUP; }
int32_t WASI(path_create_directory)(int32_t fd, int32_t p, int32_t l) { return E_NOTSUP; }
int32_t WASI(path_filestat_get)(int32_t fd, int32_t fl, int32_t p, int32_t l, int32_t out) { return E_NOENT; }
int32_t WASI(path_filestat_set_times)(int32_t fd, int32_t fl, int32_t p, int32_t l, int64_t a, int64_t m, int32_t f) {
    return E_NOTSUP;
}
int32_t WASI(path_link)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e, int32_t f, int32_t g) {
    return E_NOTSUP;
}
int32_t WASI(path_open)(int32_t fd, int32_t df, int32_t p, int32_t l, int32_t of, int64_t rb, int64_t ri, int32_t ff,
                        int32_t out) {
    return E_NOENT;
}
int32_t WASI(path_readlink)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e, int32_t f) { return E_NOENT; }
int32_t WASI(path_remove_directory)(int32_t fd, int32_t p, int32_t l) { return E_NOTSUP; }
int32_t WASI(path_rename)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e, int32_t f) { return E_NOTSUP; }
int32_t WASI(path_symlink)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) { return E_NOTSUP; }
int32_t WASI(path_unlink_file)(int32_t fd, int32_t p, int32_t l) { return E_NOTSUP; }
int32_t WASI(poll_oneoff)(int32_t in, int32_t out, int32_t n, uint32_t *nevents) {
    *nevents = 0;
    return E_NOSYS;
}
_Noreturn void WASI(proc_exit)(int32_t code) { __builtin_trap(); }
int32_t WASI(sched_yield)(void) { return OK; }

/* Deterministic on purpose: reducers must replay identically.  Modules get real entropy per call through
   ReducerContext.random (seeded from the call's timestamp), as in the other SDKs. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
int32_t WASI(random_get)(uint8_t *buf, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        buf[i] = (uint8_t)rng_state;
    }
    return OK;
}
int32_t WASI(sock_accept)(int32_t fd, int32_t flags, int32_t out) { return E_NOTSUP; }
int32_t WASI(sock_recv)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e, int32_t f) { return E_NOTSUP; }
int32_t WASI(sock_send)(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) { return E_NOTSUP; }
int32_t WASI(sock_shutdown)(int32_t fd, int32_t how) { return E_NOTSUP; }

/* zig's libc implements close() in Zig and names the WASI import "fd_close|wasi_snapshot_preview1". */
int32_t stdb_zig_fd_close(int32_t fd) __asm__("fd_close|wasi_snapshot_preview1");
int32_t stdb_zig_fd_close(int32_t fd) { return WASI(fd_close)(fd); }

/* No dynamic loading in a single core module. */
void *dlopen(const char *file, int mode) { return NULL; }
void *dlsym(void *handle, const char *sym) { return NULL; }
char *dlerror(void) { return "dynamic loading is not supported in a SpacetimeDB module"; }
