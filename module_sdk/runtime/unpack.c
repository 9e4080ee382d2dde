/* The snapshot heap, stored compressed and unpacked on an instance's first call.
 *
 * The build (module_sdk/build/snapshot.py) compresses the pre-initialized memory image (static data and the
 * interpreter's heap: ~8 MB, mostly Python objects) as one LZ4 block and stores only that block in the output's
 * data section, at the END of the image's own address range plus a margin: the output module is ~60 % of its
 * uncompressed size.  `stdb_packed` (zero in the runtime and in the image; the build writes it in a data segment
 * of its own) says where.  `stdb_unpack()` runs at the top of every export: the first call decodes the block in
 * place, forwards from the image's first byte, so every object lands at the address it had when the build
 * snapshotted it and memory ends where it ended; later calls see `src_len == 0` and return at once.
 *
 * In place: the block ends `margin` bytes after the image, and the decoder's output never overtakes its input
 * (every sequence with a match is no longer than the bytes it produces, a literal run at most 1/255 longer,
 * so margin = len / 255 + 64 always suffices; the decoder checks it anyway and traps rather than corrupt).
 *
 * LZ4 block format: sequences of token (literal length << 4 | match length - 4), literal length extension bytes
 * (255 = more follow), literals, 2-byte little-endian match offset, match length extension bytes; the last
 * sequence is literals only.
 */
#include <stdint.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

struct stdb_packed {
    uint32_t src, src_len; /* the compressed block */
    uint32_t dst, dst_len; /* where the image goes (its first and last non-zero bytes) */
};

/* Written by the build into the output module's data; the unpacked image holds zeros here, which ends the
   first call's work for good. */
volatile struct stdb_packed stdb_packed;

/* The build asks where `stdb_packed` is (then drops this export). */
EXPORT("stdb_packed_at") uint32_t stdb_packed_at(void) { return (uint32_t)(uintptr_t)&stdb_packed; }

static size_t ext_len(const uint8_t **ip, const uint8_t *iend, size_t n) {
    uint8_t b;
    do {
        if (*ip >= iend) __builtin_trap();
        b = *(*ip)++;
        n += b;
    } while (b == 255);
    return n;
}

/* Whether n bytes at p are all zero (8 at a time: wasm loads need no alignment). */
static int all_zero(const uint8_t *p, size_t n) {
    uint64_t acc = 0, w;
    for (; n >= 8; n -= 8, p += 8) {
        memcpy(&w, p, 8);
        acc |= w;
        if (acc) return 0;
    }
    while (n--) acc |= *p++;
    return !acc;
}

/* 16 bytes in two 8-byte steps (each loaded before it is stored): most literal runs and matches are shorter;
   the caller checks that the bytes past the run may be overwritten. */
static inline void copy16(uint8_t *d, const uint8_t *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    memcpy(d, &w, 8);
    memcpy(&w, s + 8, 8);
    memcpy(d + 8, &w, 8);
}

/* Copies n bytes forwards, dst <= src or the ranges apart; short copies (most of them) without a call. */
static inline void copy_fwd(uint8_t *d, const uint8_t *s, size_t n) {
    if (n <= 16) {
        while (n--) *d++ = *s++;
    } else {
        memmove(d, s, n);
    }
}

/* Decodes the block [ip, iend) to [op, oend).  Memory below `fresh` that the decoder has not written yet is
   still zero (a new instance's memory), so a match that copies zeros there is skipped: most of the image's
   8 MB are the free space between objects, and writing it again would double the first call's time. */
static void decode(const uint8_t *ip, const uint8_t *iend, uint8_t *op, uint8_t *oend, const uint8_t *fresh) {
    uint8_t *const base = op;
    for (;;) {
        if (ip >= iend) __builtin_trap();
        unsigned token = *ip++;
        size_t n = token >> 4;
        if (n == 15) n = ext_len(&ip, iend, n);
        if (n > (size_t)(iend - ip) || n > (size_t)(oend - op)) __builtin_trap();
        if (n <= 16 && ip + 16 <= iend && op + 16 <= ip + n && op + 16 <= oend)
            copy16(op, ip); /* the bytes past n are rewritten by what follows */
        else
            copy_fwd(op, ip, n); /* op <= ip: a forward copy never reads what it wrote */
        op += n;
        ip += n;
        if (ip == iend) {
            if (op != oend) __builtin_trap();
            return;
        }
        if (iend - ip < 2) __builtin_trap();
        size_t off = (size_t)ip[0] | (size_t)ip[1] << 8;
        ip += 2;
        size_t m = token & 15;
        if (m == 15) m = ext_len(&ip, iend, m);
        m += 4;
        if (off == 0 || off > (size_t)(op - base) || m > (size_t)(oend - op) || op + m > ip) __builtin_trap();
        const uint8_t *s = op - off;
        if (m >= 64 && op + m <= fresh && all_zero(s, off < m ? off : m)) {
            memset(op, 0, 16); /* what a 16-byte copy may have written past the previous run */
            op += m;
            continue;
        }
        if (off >= 8 && m <= 16 && op + 16 <= ip && op + 16 <= oend) {
            copy16(op, s); /* 8 bytes at a time is right for off >= 8 (the second load may see the first store) */
            op += m;
            continue;
        }
        if (off >= m) {
            copy_fwd(op, s, m);
            op += m;
            continue;
        }
        /* out[i] = out[i - off]: copy from s in chunks as long as what is already periodic (log2 steps) */
        while (m) {
            size_t c = (size_t)(op - s);
            if (c > m) c = m;
            copy_fwd(op, s, c);
            op += c;
            m -= c;
        }
    }
}

/* Exported for tests (tests/test_build_packed.py calls it alone and compares memory with the image); the build
   drops the export like stdb_packed_at. */
EXPORT("stdb_unpack") void stdb_unpack(void) {
    uint32_t src = stdb_packed.src, src_len = stdb_packed.src_len, dst = stdb_packed.dst,
             dst_len = stdb_packed.dst_len;
    if (!src_len) return;
    decode((const uint8_t *)(uintptr_t)src, (const uint8_t *)(uintptr_t)(src + src_len), (uint8_t *)(uintptr_t)dst,
           (uint8_t *)(uintptr_t)(dst + dst_len), (const uint8_t *)(uintptr_t)src);
    /* the block's tail past the image (the margin) was zero when the build snapshotted memory */
    uint32_t end = dst + dst_len, from = src > end ? src : end;
    memset((uint8_t *)(uintptr_t)from, 0, src + src_len - from);
    /* the image has zeros here (a skipped run of zeros may have left the build's record in place) */
    stdb_packed.src = stdb_packed.src_len = stdb_packed.dst = stdb_packed.dst_len = 0;
}
