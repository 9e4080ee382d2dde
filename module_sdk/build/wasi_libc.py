"""The part of zig's bundled wasi-libc that the runtime links, compiled directly (issue 10: cold build time).

`zig cc ... -lc` builds ALL of wasi-libc (~620 C files, one clang process each, one after another: ~20 s of a
~30 s cold build) although the runtime's link extracts 174 of them.  Instead, build_runtime() compiles those 174
files itself, a few clang processes with many files each, in parallel with zig building its own libc code
(`lib/c.zig`, "zigc") and compiler-rt, and links them with `-nostdlib`.  The objects, the archive order and the
link line are the ones `zig cc -lc` produces, so the linked runtime is byte-identical to the `-lc` link
(checked by tests/test_build_libc.py, which also links the `-lc` way and compares).

The clang flags below are those zig 0.17.1 (pinned, toolchain.py) passes for each of these files, read off its
`zig clang` child processes (`strace -f -e trace=execve` of a cold `-lc` link); the file list is the link's
`wasm-ld --trace` over zig's libc.a.  A runtime that calls a libc function outside this list makes the
`-nostdlib` link fail with an undefined symbol, and build_runtime() falls back to the `-lc` link (slow, same
bytes) with a warning: regenerate the list.  A new ziglang pin needs both regenerated; tests/test_build_libc.py
fails until then (missing sources, or bytes that differ from the `-lc` link).  The tables are part of the
runtime cache key.
"""

from __future__ import annotations

from pathlib import Path

# the link line wasm-ld gets from `zig cc -lc` with the runtime's flags: crt1-reactor.o libc.a libzigc.a <objects>
# libpython3.11.a libcompiler_rt.a (the emulated signal/getpid/process-clocks objects are in zig's libc.a)

_FEATURES = (
    "-atomics -bulk-memory -bulk-memory-opt -call-indirect-overlong -exception-handling -extended-const -fp16 -gc "
    "-multimemory -multivalue +mutable-globals -nontrapping-fptoint -reference-types -relaxed-simd +sign-ext "
    "-simd128 -tail-call -wide-arithmetic"
).split()
# `{lib}` is zig's lib directory
_BASE = (
    "--no-default-config -target wasm32-unknown-wasip1-unknown -fno-PIE -fno-PIC -fno-lto -fhosted -nostdinc "
    "-DNDEBUG -isystem {lib}/include -fno-spell-checking -Werror=date-time -O2 -fno-omit-frame-pointer "
    "-fno-stack-protector -fbuiltin -ffunction-sections -fdata-sections -fasynchronous-unwind-tables "
    "-Xclang -target-cpu -Xclang mvp"
).split()
_BASE += [a for f in _FEATURES for a in ("-Xclang", "-target-feature", "-Xclang", f)]
_BASE += "-std=gnu17 -fno-trapping-math -w".split()
_COMMON = "-mthread-model single -I {lib}/libc/wasi/libc-bottom-half/cloudlibc/src".split() + [
    "-isystem", "{lib}/libc/include/wasm-wasi-musl", "-isystem", "{lib}/libc/include/generic-musl",
    "-DBULK_MEMORY_THRESHOLD=32",
]
_BOTTOM_INCLUDES = [
    a
    for d in ("wasi/libc-bottom-half/headers/private", "wasi/libc-bottom-half/cloudlibc/src/include",
              "wasi/libc-bottom-half/cloudlibc/src", "wasi/libc-top-half/musl/src/include", "musl/src/include",
              "wasi/libc-top-half/musl/src/internal", "musl/src/internal")
    for a in ("-I", "{lib}/libc/" + d)
]
_TOP_INCLUDES = [
    a
    for d in ("wasi/libc-top-half/musl/src/include", "musl/src/include", "wasi/libc-top-half/musl/src/internal",
              "musl/src/internal", "wasi/libc-top-half/musl/arch/wasm32", "musl/arch/generic",
              "wasi/libc-top-half/headers/private")
    for a in ("-I", "{lib}/libc/" + d)
]


def _files(*runs: tuple[str, str]) -> tuple[str, ...]:
    """(directory under lib/libc, space-separated stems) runs -> paths, in zig's libc.a order."""
    return tuple(f"{d}/{stem}.c" for d, stems in runs for stem in stems.split())


_BOTTOM_SOURCES = _files(
    ("wasi/libc-bottom-half/cloudlibc/src/libc/dirent", "closedir fdclosedir fdopendir opendirat readdir scandirat"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/errno", "errno"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/fcntl", "fcntl openat posix_fadvise"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/sched", "sched_yield"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/stdio", "renameat"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/stdlib", "_Exit"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/sys/ioctl", "ioctl"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/sys/stat", "fstatat fstat futimens mkdirat utimensat"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/sys/time", "gettimeofday"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/sys/uio", "readv writev"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/time",
     "clock_getres clock_gettime CLOCK_MONOTONIC clock_nanosleep CLOCK_REALTIME time"),
    ("wasi/libc-bottom-half/cloudlibc/src/libc/unistd",
     "faccessat fdatasync fsync ftruncate linkat lseek pread pwrite read readlinkat symlinkat unlinkat write"),
    ("wasi/libc-bottom-half/sources", "abort at_fdcwd chdir environ getcwd getentropy isatty"),
    ("wasi/libc-bottom-half/sources/math", "math-builtins"),
    ("wasi/libc-bottom-half/sources",
     "posix preopens truncate __wasilibc_dt __wasilibc_initialize_environ __wasilibc_real __wasilibc_rmdirat "
     "__wasilibc_tell __wasilibc_unlinkat"),
)
_TOP_SOURCES = _files(
    ("musl/src/conf", "confstr pathconf"),
    ("musl/src/ctype", "iswspace"),
    ("musl/src/env", "setenv"),
    ("musl/src/fenv", "fenv fesetround"),
    ("musl/src/locale", "c_locale langinfo __lctrans localeconv __mo_lookup setlocale"),
    ("musl/src/math",
     "acosh asinh atan2 atanh erf exp_data expm1 fma ilogbl ldexp __math_invalid __math_oflow __math_uflow "
     "__math_xflow nextafter nextafterl pow pow_data scalbn scalbnl"),
    ("musl/src/multibyte", "internal mbrtowc mbsrtowcs mbstowcs wcrtomb wcsrtombs wcstombs wctomb"),
    ("musl/src/stdio",
     "clearerr fclose feof ferror fflush fgets fileno __fmodeflags fopencookie fprintf fputs fread fwrite "
     "ofl_add __overflow puts rewind setvbuf snprintf sprintf __stdio_exit __toread __towrite __uflow ungetc "
     "vsprintf"),
    ("musl/src/time", "__month_to_secs __year_to_secs"),
    ("wasi/libc-top-half/musl/src/conf", "fpathconf sysconf"),
    ("wasi/libc-top-half/musl/src/env", "clearenv getenv putenv unsetenv"),
    ("wasi/libc-top-half/musl/src/errno", "strerror"),
    ("wasi/libc-top-half/musl/src/exit", "exit"),
    ("wasi/libc-top-half/musl/src/internal", "intscan libc shgetc"),
    ("wasi/libc-top-half/musl/src/locale", "locale_map"),
    ("wasi/libc-top-half/musl/src/math", "__expo2 fmal sinh"),
    ("wasi/libc-top-half/musl/src/stdio",
     "__fdopen fopen fputc fseek ftell getc ofl printf putchar stderr stdin __stdio_close __stdio_read "
     "__stdio_seek __stdio_write stdout __stdout_write vfprintf vsnprintf"),
    ("wasi/libc-top-half/musl/src/stdlib", "wcstol"),
    ("wasi/libc-top-half/musl/src/time",
     "gmtime_r localtime_r mktime __secs_to_tm strftime __tm_to_secs __tz wcsftime"),
)
_EMULATED_SOURCES = _files(
    ("wasi/libc-bottom-half/clocks", "clock times"),
    ("wasi/libc-bottom-half/getpid", "getpid"),
    ("wasi/libc-bottom-half/signal", "signal"),
)
_EMULATED_SIGNAL_TOP_SOURCES = _files(
    ("musl/src/string", "strsignal"),
)

CRT1 = "wasi/libc-bottom-half/crt/crt1-reactor.c"
CRT1_FLAGS = (*_BASE, "-Os", *_COMMON, *_BOTTOM_INCLUDES)
# (flags, sources) in libc.a order
GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((*_BASE, "-O3", *_COMMON, *_BOTTOM_INCLUDES), _BOTTOM_SOURCES),
    ((*_BASE, "-O3", *_COMMON, *_TOP_INCLUDES), _TOP_SOURCES),
    ((*_BASE, "-O3", *_COMMON), _EMULATED_SOURCES),
    ((*_BASE, "-O3", *_COMMON, *_TOP_INCLUDES, "-D_WASI_EMULATED_SIGNAL"), _EMULATED_SIGNAL_TOP_SOURCES),
)
# zig's own libc code and compiler-rt, built as zig builds them for `-lc` (no builtins, no stack checks/protector)
ZIG_LIB_FLAGS = ("-target", "wasm32-wasi", "-mcpu=mvp+mutable_globals+sign_ext", "-O", "ReleaseFast", "-fstrip",
                 "-fno-stack-check", "-fno-stack-protector", "-fno-builtin")


def table_id() -> str:
    """Everything above, for the runtime cache key."""
    parts = [CRT1, *CRT1_FLAGS, *ZIG_LIB_FLAGS]
    for flags, srcs in GROUPS:
        parts += ["|", *flags, "|", *srcs]
    return "\0".join(parts)


def object_name(src: str) -> str:
    return Path(src).stem + ".o"


def archive_members() -> list[str]:
    """Object file names in libc.a order (unique: clang writes a batch's objects to its cwd by stem)."""
    return [object_name(s) for _, srcs in GROUPS for s in srcs]


def compile_jobs(zig: list[str], lib: Path, work: Path, batches: int = 2) -> list[tuple[list[str], Path]]:
    """(command, cwd) jobs, independent of each other: zigc, compiler-rt, crt1-reactor.o and the libc objects (each
    group split into `batches` clang processes).  Outputs land in `work` (libzigc.a, libcompiler_rt.a, *.o)."""

    def sub(args) -> list[str]:
        return [a.replace("{lib}", str(lib)) for a in args]

    jobs: list[tuple[list[str], Path]] = [
        ([*zig, "build-lib", *ZIG_LIB_FLAGS, "--name", "compiler_rt", str(lib / "compiler_rt.zig")], work),
        ([*zig, "build-lib", *ZIG_LIB_FLAGS, "-lc", "--name", "zigc", str(lib / "c.zig")], work),
        ([*zig, "clang", *sub(CRT1_FLAGS), "-c", str(lib / "libc" / CRT1), "-o", str(work / object_name(CRT1))],
         work),
    ]
    for flags, srcs in GROUPS:
        size = -(-len(srcs) // batches)
        for i in range(0, len(srcs), size):
            jobs.append(([*zig, "clang", *sub(flags), "-c", *(str(lib / "libc" / s) for s in srcs[i : i + size])],
                         work))
    return jobs
