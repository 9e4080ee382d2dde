"""Logging to the database's module log (`spacetime logs`), module-abi.md section 13.

    from module_sdk import log
    log.info("joined:", name)          # print-style: arguments joined by spaces
    log.warn(f"{n} rows left")
    with log.timer("rebuild"):         # logs 'Timing span "rebuild": <duration>' when the block ends
        ...

Every record carries the caller's file and line.  Inside a module `print()` goes to the log too (stdout at
INFO, stderr at WARN), also with the caller's file and line.
"""

import sys

from . import _abi

ERROR = 0
WARN = 1
INFO = 2
DEBUG = 3
TRACE = 4
PANIC = 101

_getframe = sys._getframe


def _text(args, sep):
    if len(args) == 1:
        a = args[0]
        return a if a.__class__ is str else str(a)
    return sep.join([a if a.__class__ is str else str(a) for a in args])


def _emit(level, message, depth):
    try:
        f = _getframe(depth)
        code = f.f_code
        _abi.console_log(level, f.f_globals.get('__name__'), code.co_filename, f.f_lineno, message)
    except ValueError:  # no such frame
        _abi.console_log(level, None, None, None, message)


def error(*args, sep=' '):
    _emit(ERROR, _text(args, sep), 2)


def warn(*args, sep=' '):
    _emit(WARN, _text(args, sep), 2)


warning = warn


def info(*args, sep=' '):
    _emit(INFO, _text(args, sep), 2)


def debug(*args, sep=' '):
    _emit(DEBUG, _text(args, sep), 2)


def trace(*args, sep=' '):
    _emit(TRACE, _text(args, sep), 2)


def log(level, *args, sep=' '):
    """Log at a numeric level (ERROR=0, WARN=1, INFO=2, DEBUG=3, TRACE=4)."""
    _emit(level, _text(args, sep), 2)


class timer:
    """`with log.timer("name"): ...` measures the block on the host and logs the span at INFO."""

    __slots__ = ('name', '_id')

    def __init__(self, name):
        self.name = name
        self._id = None

    def __enter__(self):
        self._id = _abi.timer_start(self.name)
        return self

    def __exit__(self, *exc):
        if self._id is not None:
            _abi.timer_end(self._id)
            self._id = None
        return False


# ---- tracebacks, formatted by hand (the traceback module costs ~1.6 MB per module) ----

# The user's own source files (origin -> bytes), stored by the build (boot.py) so that tracebacks show the
# line that failed, on any server: a module has no files to read at run time.
_SOURCES = {}
_LINES = {}


def set_sources(blob):
    """(build time) Keep the user's files from the build host's `?sources` answer."""
    pos = 0
    while pos < len(blob):
        a = blob.index(b'\0', pos)
        b = blob.index(b'\0', a + 1)
        end = b + 1 + int(blob[a + 1:b])
        _SOURCES[blob[pos:a].decode()] = blob[b + 1:end]
        pos = end


def source_line(filename, lineno):
    """Line `lineno` of a user file, stripped ('' when unknown)."""
    lines = _LINES.get(filename)
    if lines is None:
        src = _SOURCES.get(filename)
        if src is None:
            return ''
        lines = _LINES[filename] = src.decode('utf-8', 'replace').splitlines()
    return lines[lineno - 1].strip() if lineno and 0 < lineno <= len(lines) else ''


def format_exception(exc):
    """`Traceback (most recent call last): ... Type: message`, following __cause__/__context__."""
    parts = []
    seen = set()
    e = exc
    while e is not None and id(e) not in seen and len(parts) < 8:
        seen.add(id(e))
        parts.append(_format_one(e))
        if e.__cause__ is not None:
            parts.append('\nThe above exception was the direct cause of the following exception:\n\n')
            e = e.__cause__
        elif e.__context__ is not None and not e.__suppress_context__:
            parts.append('\nDuring handling of the above exception, another exception occurred:\n\n')
            e = e.__context__
        else:
            e = None
    if len(parts) > 1:  # chain is collected newest first; print oldest first like CPython
        parts = _reverse_chain(parts)
    return ''.join(parts)


def _reverse_chain(parts):
    blocks = parts[0::2]
    seps = parts[1::2]
    out = []
    for i in range(len(blocks) - 1, -1, -1):
        out.append(blocks[i])
        if i > 0:
            out.append(seps[i - 1])
    return out


def _is_sdk(filename):
    """Frames of the SDK, the stdlib and generated code (`<sats enc>`): not where a user's mistake is."""
    return (filename.startswith(('<', 'module_sdk/', 'spacetime_core/')) or '/module_sdk/' in filename
            or '/spacetime_core/' in filename)


def _format_one(e):
    """One traceback, from the user's first frame to their last: the SDK's dispatch frames above and its
    internals below (the codec that found the bad value, ...) are counted, not listed."""
    lines = ['Traceback (most recent call last):\n']
    frames = []
    tb = e.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    user = [i for i, f in enumerate(frames) if not _is_sdk(f[0])]
    below = 0
    if user:
        below = len(frames) - 1 - user[-1]
        frames = frames[user[0]:user[-1] + 1]
    n = 0
    inside = 0  # SDK frames between two of the user's (ctx.from_.t.where calling the user's lambda): counted too
    for filename, lineno, name in frames:
        if user and _is_sdk(filename):
            inside += 1
            continue
        if inside and n < 64:
            lines.append(f'  ({inside} frame{"s" if inside > 1 else ""} inside module_sdk)\n')
        inside = 0
        if n < 64:
            lines.append(f'  File "{filename}", line {lineno}, in {name}\n')
            text = source_line(filename, lineno)
            if text:
                lines.append(f'    {text}\n')
        n += 1
    if n > 64:
        lines.append(f'  ... {n - 64} more frames\n')
    if below:
        lines.append(f'  ({below} frame{"s" if below > 1 else ""} inside module_sdk)\n')
    lines.append(exception_summary(e) + '\n')
    return ''.join(lines)


def exception_summary(e):
    """'Type: message' (or just 'Type')."""
    try:
        msg = str(e)
    except Exception:
        msg = '<unprintable>'
    name = type(e).__name__
    return f'{name}: {msg}' if msg else name


def innermost_frame(e):
    """(filename, line) of the innermost user frame of `e`'s traceback (else the frame that raised it), or
    (None, None)."""
    tb = e.__traceback__
    if tb is None:
        return None, None
    found = None
    while tb is not None:
        if found is None or not _is_sdk(tb.tb_frame.f_code.co_filename) or _is_sdk(found[0]):
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def log_exception(e, context=''):
    """Log `e` with its traceback at ERROR, attributed to the frame that raised it."""
    filename, line = innermost_frame(e)
    text = format_exception(e)
    if context:
        text = context + '\n' + text
    _abi.console_log(ERROR, 'module_sdk', filename, line, text.rstrip('\n'))


# ---- print() -> the module log ----

class _LogStream:
    """A write-only text stream: complete lines become log records at `level` with the caller's file:line."""

    encoding = 'utf-8'
    errors = 'replace'

    def __init__(self, level, name):
        self.level = level
        self.name = name
        self._buf = []

    def write(self, s):
        if s.__class__ is not str:
            s = str(s)
        if '\n' not in s:
            if s:
                self._buf.append(s)
            return len(s)
        text = ''.join(self._buf) + s if self._buf else s
        self._buf = []
        lines = text.split('\n')
        tail = lines.pop()
        if tail:
            self._buf.append(tail)
        f = _caller()
        for line in lines:
            if f is None:
                _abi.console_log(self.level, None, None, None, line)
            else:
                _abi.console_log(self.level, f.f_globals.get('__name__'), f.f_code.co_filename, f.f_lineno, line)
        return len(s)

    def flush(self):
        if self._buf:
            text = ''.join(self._buf)
            self._buf = []
            f = _caller()
            if f is None:
                _abi.console_log(self.level, None, None, None, text)
            else:
                _abi.console_log(self.level, f.f_globals.get('__name__'), f.f_code.co_filename, f.f_lineno, text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def fileno(self):
        raise OSError('the module log has no file descriptor')

    def __repr__(self):
        return f'<module log {self.name}>'


def _caller():
    """The first frame outside this file (print() is a builtin, so usually the frame that called it)."""
    try:
        f = _getframe(2)
    except ValueError:
        return None
    here = _caller.__code__.co_filename
    while f is not None and f.f_code.co_filename == here:
        f = f.f_back
    return f


def install_std_streams():
    """Route sys.stdout (INFO) and sys.stderr (WARN) to the module log; done on import inside a module."""
    if not isinstance(sys.stdout, _LogStream):
        sys.stdout = _LogStream(INFO, '<stdout>')
    if not isinstance(sys.stderr, _LogStream):
        sys.stderr = _LogStream(WARN, '<stderr>')


if _abi.IN_MODULE:
    install_std_streams()
