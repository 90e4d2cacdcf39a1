"""Guards at the landing boundary: files opened without following links, files created with their
final (private) mode, error texts that never quote landing data, and the known conditions a run
reports with a clear message instead of a traceback (docs/ingest.md, "Landing boundary" and
"Messages").
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat as stat_module
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import duckdb

# Everything the pipeline writes next to the work file (its WAL, DuckDB's spill files, transcoded
# copies, caches) holds PII or is derived from it: owner-only from the moment it is created. The
# files meant for others (the published DuckDB file, reports) get their mode explicitly.
PRIVATE_UMASK = 0o077
PRIVATE_FILE_MODE = 0o600


def use_private_umask() -> int:
    """Give this process (and the dbt child it starts) a private umask; returns the previous one.

    DuckDB creates the work file's ``.wal`` and its spill folder lazily, whenever it writes, with
    the process umask: a umask changed only around ``connect`` leaves the WAL 0644 while it holds
    PII. So the pipeline process keeps 077 from its first work-file connection on."""
    return os.umask(PRIVATE_UMASK)


def create_private_file(path: Path | str, *, exclusive: bool = True) -> int:
    """A new file opened for writing with mode 0600 from its creation (no chmod afterwards, so no
    window in which it is readable by others). Returns the descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_EXCL if exclusive else os.O_TRUNC
    return os.open(path, flags, PRIVATE_FILE_MODE)


def open_private_text(path: Path | str, encoding: str = "utf-8", newline: str | None = ""):
    """``open(path, "w")`` for a new private file (0600 at creation); an existing file is replaced."""
    path = Path(path)
    path.unlink(missing_ok=True)
    return os.fdopen(create_private_file(path), "w", encoding=encoding, newline=newline)


# ------------------------------------------------------------------------------ reading files


class FileChanged(Exception):
    """A landing file was replaced or modified between the listing and the end of its read."""


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def open_no_follow(path: Path | str) -> int:
    """A read-only descriptor of ``path`` that refuses a symbolic link as the last component and
    does not block on a FIFO; raises FileChanged if it is not a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileChanged("it became a symbolic link after the listing; not read") from None
        raise
    st = os.fstat(fd)
    if not stat_module.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileChanged("it is no longer a regular file; not read")
    return fd


_PROC_FD = Path("/proc/self/fd")


@contextmanager
def opened_for_reading(files: list, on_changed) -> Iterator[list]:
    """Open every landing file of a batch with ``O_NOFOLLOW`` and yield copies of them whose
    ``path`` reads through the open descriptor (``/proc/self/fd/<n>`` on Linux), so DuckDB,
    openpyxl and the Python readers read exactly the inode that was listed, even if the name is
    swapped for a link meanwhile. A file whose identity (device, inode, size, mtime, ctime) is not
    the listed one at open or after the read is reported through ``on_changed(file, reason)`` and
    left out (it is read again by the next run)."""
    fds: dict[str, int] = {}
    ready = []
    try:
        for f in files:
            try:
                fd = open_no_follow(f.path)
            except FileChanged as exc:
                on_changed(f, str(exc))
                continue
            except OSError as exc:
                on_changed(f, f"cannot be opened ({os.strerror(exc.errno) if exc.errno else type(exc).__name__})")
                continue
            if f.identity is not None and _identity(os.fstat(fd)) != f.identity:
                os.close(fd)
                on_changed(f, "it changed after it was listed (size, mtime, ctime or inode); it is read by the next run")
                continue
            fds[f.rel_path] = fd
            read_path = _PROC_FD / str(fd) if _PROC_FD.is_dir() else f.path
            ready.append(replace(f, path=read_path))
        yield ready
    finally:
        for f in files:
            fd = fds.pop(f.rel_path, None)
            if fd is None:
                continue
            try:
                if f.identity is not None and _identity(os.fstat(fd)) != f.identity:
                    on_changed(f, "it changed while it was being read; it is read again by the next run")
                elif _PROC_FD.is_dir() is False and f.identity is not None:
                    # Without /proc the readers used the name: check it still names the same file.
                    try:
                        if _identity(os.lstat(f.path)) != f.identity:
                            on_changed(f, "it was replaced while it was being read")
                    except OSError:
                        on_changed(f, "it was removed while it was being read")
            finally:
                os.close(fd)


# ------------------------------------------------------------------------------ messages

_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
_LONG_DIGITS = re.compile(r"[0-9]{7,}")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]+")
# Parts of DuckDB / parser messages that quote the input.
_CUT_AT = re.compile(r"(original line|input:|line:|\bline \d+:|parser options|possible solution|"
                     r"candidate|sniffing|was found|value:)", re.IGNORECASE)
MESSAGE_LIMIT = 200


def scrub(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """An exception text made safe for a ledger message, a Dagster event or a log: its first line,
    cut where parsers start quoting the input, quoted parts removed, anything that is not
    printable ASCII (a name, a control byte) and long digit runs (phones, ID numbers) masked."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    cut = _CUT_AT.search(first)
    if cut:
        first = first[: cut.start()].rstrip(" :,(") + " (details withheld)"
    first = _QUOTED.sub("<...>", first)
    first = _NOT_PRINTABLE_ASCII.sub("<...>", first)
    first = _LONG_DIGITS.sub("<digits>", first)
    return first[:limit]


def describe(exc: BaseException) -> str:
    """``<ExceptionType>: <scrubbed text>`` (never the raw text of a landing line)."""
    text = scrub(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def printable_name(name: str, limit: int = 120) -> str:
    """A file name as it may be shown: control characters, undecodable bytes and other
    non-printable characters escaped (a name is chosen by whoever writes the landing folder)."""
    out = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable() and ch not in "\\":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------ known conditions


class KnownCondition(Exception):
    """A condition the run reports with a clear message and an exit code, never a traceback."""

    exit_code = 1


class WarehouseBusy(KnownCondition):
    exit_code = 4


class WarehouseUnwritable(KnownCondition):
    exit_code = 2


class DiskFull(KnownCondition):
    exit_code = 1


def _lock_holder(text: str) -> str:
    m = re.search(r"PID (\d+)", text)
    return f" (held by process {m.group(1)})" if m else ""


def known_condition(exc: BaseException, where: Path | str) -> KnownCondition | None:
    """The known condition behind ``exc`` (a DuckDB or OS error while using ``where``), if any."""
    text = str(exc)
    lowered = text.lower()
    number = getattr(exc, "errno", None)
    if "could not set lock" in lowered or "conflicting lock" in lowered:
        return WarehouseBusy(f"another run is in progress: {where} is locked{_lock_holder(text)}. "
                             "Wait for it to finish (or stop it) and run again.")
    if number == errno.ENOSPC or "no space left" in lowered or "disk full" in lowered or "disk is full" in lowered:
        return DiskFull(f"no space left on the device of {where}: free some space and run again "
                        "(the published file is unchanged)")
    if number in (errno.EROFS, errno.EACCES, errno.EPERM) or "read-only file system" in lowered \
            or "permission denied" in lowered:
        return WarehouseUnwritable(f"{where} cannot be written ({'read-only file system' if number == errno.EROFS or 'read-only' in lowered else 'permission denied'}): "
                                   "check the folder's permissions or CSWH_WAREHOUSE_DIR")
    return None


class RunLock:
    """An exclusive lock on the warehouse for one ``cs-warehouse run`` (``flock`` on a private lock
    file next to the work file), plus a probe of DuckDB's own lock on the work file: a second run,
    or any other process holding the work file, is a WarehouseBusy before anything starts."""

    def __init__(self, warehouse_dir: Path, work_db: Path):
        self.path = Path(warehouse_dir) / ".run.lock"
        Path(warehouse_dir).mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self.fd)
            raise WarehouseBusy(f"another cs-warehouse run (process {holder}) is in progress on {warehouse_dir}. "
                                "Wait for it to finish (or stop it) and run again.") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        if Path(work_db).exists():
            try:
                duckdb.connect(str(work_db)).close()
            except duckdb.Error as exc:
                self.release()
                condition = known_condition(exc, work_db)
                if condition is not None:
                    raise condition from None
                raise

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
