/* A compact malloc for the module runtime (replaces the libc one: this libpython has no pymalloc, so every
 * Python object is a malloc block, and the snapshot stores every non-zero byte of the heap).
 *
 * Small blocks (<= 32 KB) come from size-class chunks: a chunk is one or more 64 KB wasm pages holding slots
 * of a single size, with a header and an allocation bitmap at its start and NO per-block header, so live
 * objects sit next to each other (8-byte granular classes up to 128 bytes, then 8 classes per doubling).
 * Bigger blocks get their own run of pages (16-byte header).  A 64 KB-page map (one byte per page) says what
 * each page is, so free() finds a block's chunk from its address; freed slots are found by their offset, so
 * pointers inside a block (aligned_alloc) free correctly.  Empty chunks and freed runs go back to a page pool
 * (first fit, lowest address first, merged with their neighbours) and are reused by any size.
 *
 * While the build pre-initializes the module, `stdb_alloc_zero_free` makes free() zero each block, so memory
 * the interpreter released is not stored in the snapshot; the build clears it again before snapshotting.
 * Alignment: 8 bytes for every block, 16 for sizes that are multiples of 16 and for big blocks (wasm loads
 * and stores never fault on alignment; aligned_alloc/posix_memalign honour any power of two).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PAGE_SHIFT 16
#define PAGE (1u << PAGE_SHIFT)
#define NPAGES 65536u
#define MAX_SMALL 32768u
#define LARGE_HDR 16u

enum { PM_NONE = 0, PM_FREE = 0xFC, PM_CONT = 0xFD, PM_LARGE = 0xFE };

static const uint32_t class_size[] = {
    8,     16,    24,    32,    40,    48,    56,    64,    72,    80,    88,    96,    104,   112,   120,
    128,   144,   160,   176,   192,   208,   224,   240,   256,   288,   320,   352,   384,   416,   448,
    480,   512,   576,   640,   704,   768,   832,   896,   960,   1024,  1152,  1280,  1408,  1536,  1664,
    1792,  1920,  2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240, 12288, 14336, 16384,
    20480, 24576, 28672, 32768};
#define NCLASS (sizeof class_size / sizeof class_size[0])

typedef struct chunk {
    struct chunk *next, *prev; /* the class's list of chunks with free slots */
    uint32_t cls, nslots, nfree, hint; /* hint: every bitmap word below it is full */
    uint32_t data, pages;              /* offset of slot 0; chunk length in pages */
    uint32_t bits[];
} chunk;

typedef struct {
    uint32_t nslots, data, pages;
} layout;

static uint8_t pagemap[NPAGES]; /* per 64 KB page: PM_* or 1 + size class (first page of a chunk) */
static layout layouts[NCLASS];
static chunk *partial[NCLASS];
static uint8_t small_class[129]; /* (n + 7) / 8 -> class, for n <= 1024 */
static int ready;
int stdb_alloc_zero_free = 0;

/* The page pool: free runs of pages, sorted by address. */
#define MAX_RUNS 4096
static struct {
    uint32_t page, n;
} runs[MAX_RUNS];
static uint32_t nruns;

static void setup(void) {
    for (uint32_t c = 0; c < NCLASS; c++) {
        uint32_t s = class_size[c], pages = 1;
        while (pages * PAGE < 64 + 8 * s) pages++; /* at least 8 slots per chunk */
        uint32_t bytes = pages * PAGE;
        uint32_t n = (uint32_t)(((uint64_t)(bytes - sizeof(chunk)) * 8) / (8 * (uint64_t)s + 1));
        uint32_t data;
        for (;;) {
            data = (uint32_t)(sizeof(chunk) + 4 * ((n + 31) / 32) + 15) & ~15u;
            if (data + n * s <= bytes) break;
            n--;
        }
        layouts[c] = (layout){n, data, pages};
    }
    for (uint32_t k = 0, c = 0; k <= 128; k++) {
        while (class_size[c] < k * 8) c++;
        small_class[k] = (uint8_t)c;
    }
    ready = 1;
}

static inline uint32_t size_class(size_t n) {
    if (n <= 1024) return small_class[(n + 7) >> 3];
    uint32_t c = 40; /* first class above 1024 */
    while (class_size[c] < n) c++;
    return c;
}

/* ---- pages ---- */

static void *pages_take(uint32_t n) {
    for (uint32_t i = 0; i < nruns; i++) {
        if (runs[i].n >= n) {
            uint32_t page = runs[i].page;
            runs[i].page += n;
            runs[i].n -= n;
            if (!runs[i].n) {
                memmove(&runs[i], &runs[i + 1], (nruns - i - 1) * sizeof runs[0]);
                nruns--;
            }
            return (void *)((uintptr_t)page << PAGE_SHIFT);
        }
    }
    size_t old = __builtin_wasm_memory_grow(0, n);
    if (old == (size_t)-1) return NULL;
    return (void *)((uintptr_t)old << PAGE_SHIFT);
}

static void pages_give(uint32_t page, uint32_t n) {
    for (uint32_t k = 0; k < n; k++) pagemap[page + k] = PM_FREE;
    uint32_t i = 0;
    while (i < nruns && runs[i].page < page) i++;
    int left = i > 0 && runs[i - 1].page + runs[i - 1].n == page;
    int right = i < nruns && page + n == runs[i].page;
    if (left && right) {
        runs[i - 1].n += n + runs[i].n;
        memmove(&runs[i], &runs[i + 1], (nruns - i - 1) * sizeof runs[0]);
        nruns--;
    } else if (left) {
        runs[i - 1].n += n;
    } else if (right) {
        runs[i].page = page;
        runs[i].n += n;
    } else if (nruns < MAX_RUNS) {
        memmove(&runs[i + 1], &runs[i], (nruns - i) * sizeof runs[0]);
        runs[i].page = page;
        runs[i].n = n;
        nruns++;
    } /* else: the pool is full of fragments; these pages stay unused */
}

/* ---- chunks ---- */

static void list_remove(chunk *c) {
    if (c->prev) c->prev->next = c->next;
    else partial[c->cls] = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void list_push(chunk *c) {
    c->prev = NULL;
    c->next = partial[c->cls];
    if (c->next) c->next->prev = c;
    partial[c->cls] = c;
}

static chunk *chunk_new(uint32_t cls) {
    layout *l = &layouts[cls];
    chunk *c = pages_take(l->pages);
    if (!c) return NULL;
    uint32_t page = (uint32_t)((uintptr_t)c >> PAGE_SHIFT);
    memset(c, 0, l->data);
    c->cls = cls;
    c->nslots = c->nfree = l->nslots;
    c->data = l->data;
    c->pages = l->pages;
    pagemap[page] = (uint8_t)(1 + cls);
    for (uint32_t k = 1; k < l->pages; k++) pagemap[page + k] = PM_CONT;
    list_push(c);
    return c;
}

static void *small_alloc(uint32_t cls) {
    chunk *c = partial[cls];
    if (!c && !(c = chunk_new(cls))) return NULL;
    uint32_t w = c->hint;
    while (c->bits[w] == 0xFFFFFFFFu) w++;
    uint32_t b = (uint32_t)__builtin_ctz(~c->bits[w]);
    c->bits[w] |= 1u << b;
    c->hint = w;
    if (--c->nfree == 0) list_remove(c);
    return (char *)c + c->data + (w * 32 + b) * class_size[cls];
}

/* The first page of the block that contains p, or 0 if p is not in the heap. */
static inline uint32_t head_page(uintptr_t p) {
    uint32_t page = (uint32_t)(p >> PAGE_SHIFT);
    while (pagemap[page] == PM_CONT) page--;
    return page;
}

/* Start and size of the block that contains p (size 0: not a heap block). */
static inline size_t block_of(void *ptr, char **start) {
    uintptr_t p = (uintptr_t)ptr;
    uint32_t page = head_page(p);
    uint8_t m = pagemap[page];
    char *base = (char *)((uintptr_t)page << PAGE_SHIFT);
    if (m == PM_LARGE) {
        *start = base + LARGE_HDR;
        return *(uint32_t *)base;
    }
    if (m == PM_NONE || m == PM_FREE) return 0;
    chunk *c = (chunk *)base;
    uint32_t s = class_size[m - 1];
    *start = base + c->data + ((uint32_t)(p - (uintptr_t)base) - c->data) / s * s;
    return s;
}

/* ---- the libc interface ---- */

void *malloc(size_t n) {
    if (!ready) setup();
    if (n <= MAX_SMALL) return small_alloc(size_class(n ? n : 1));
    if (n > 0xFFFF0000u - LARGE_HDR) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t pages = (uint32_t)((n + LARGE_HDR + PAGE - 1) >> PAGE_SHIFT);
    char *base = pages_take(pages);
    if (!base) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t page = (uint32_t)((uintptr_t)base >> PAGE_SHIFT);
    pagemap[page] = PM_LARGE;
    for (uint32_t k = 1; k < pages; k++) pagemap[page + k] = PM_CONT;
    *(uint32_t *)base = pages * PAGE - LARGE_HDR; /* usable bytes */
    return base + LARGE_HDR;
}

void free(void *ptr) {
    if (!ptr) return;
    uintptr_t p = (uintptr_t)ptr;
    uint32_t page = head_page(p);
    uint8_t m = pagemap[page];
    char *base = (char *)((uintptr_t)page << PAGE_SHIFT);
    if (m == PM_LARGE) {
        uint32_t pages = (*(uint32_t *)base + LARGE_HDR) >> PAGE_SHIFT;
        memset(base, 0, stdb_alloc_zero_free ? (size_t)pages * PAGE : LARGE_HDR);
        pages_give(page, pages);
        return;
    }
    if (m == PM_NONE || m == PM_FREE) return; /* not ours (or a double free): ignore */
    chunk *c = (chunk *)base;
    uint32_t cls = m - 1, s = class_size[cls];
    uint32_t idx = ((uint32_t)(p - (uintptr_t)base) - c->data) / s, w = idx >> 5, bit = 1u << (idx & 31);
    if (!(c->bits[w] & bit)) return; /* double free */
    c->bits[w] &= ~bit;
    if (stdb_alloc_zero_free) memset(base + c->data + idx * s, 0, s);
    if (w < c->hint) c->hint = w;
    if (c->nfree++ == 0) list_push(c);
    if (c->nfree == c->nslots && (partial[cls] != c || c->next)) { /* empty, and not the class's last chunk */
        list_remove(c);
        uint32_t pages = c->pages;
        memset(c, 0, c->data);
        pages_give(page, pages);
    }
}

void *calloc(size_t n, size_t m) {
    size_t t;
    if (__builtin_mul_overflow(n, m, &t)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(t);
    if (p) memset(p, 0, t);
    return p;
}

size_t malloc_usable_size(void *ptr) {
    if (!ptr) return 0;
    char *start;
    size_t s = block_of(ptr, &start);
    return s ? s - (size_t)((char *)ptr - start) : 0;
}

void *realloc(void *ptr, size_t n) {
    if (!ptr) return malloc(n);
    if (!n) n = 1;
    size_t have = malloc_usable_size(ptr);
    if (n <= have && (n > MAX_SMALL || n >= have / 2 || have <= 16)) return ptr;
    void *q = malloc(n);
    if (!q) return NULL;
    memcpy(q, ptr, n < have ? n : have);
    free(ptr);
    return q;
}

void *aligned_alloc(size_t align, size_t n) {
    if (!align || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8 || (align <= 16 && (n > MAX_SMALL || !(n & 15)))) return malloc(n ? n : 1);
    if (n > (size_t)-1 - align) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = malloc(n + align - 1); /* free() and friends accept any pointer inside a block */
    if (!p) return NULL;
    return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    void *p = aligned_alloc(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *memalign(size_t align, size_t n) { return aligned_alloc(align, n); }
