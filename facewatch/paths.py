"""Per-user directories and private (0600) file writes, the one place facewatch decides where data lives.

Every file in these dirs is treated as possibly planted by someone else (docs/security.md, "File safety"):
 1. A file facewatch writes is opened without following a symlink at its name (O_NOFOLLOW), or replaced
    atomically by a fresh 0600 file (a rename replaces a link, never writes through it).
 2. Anything but a regular file where a facewatch file belongs (a FIFO, a device, a directory, a link) is
    refused with one line (NotRegularFile); opens never wait (O_NONBLOCK), so a FIFO cannot stall the daemon.
 3. Dirs facewatch writes into are 0700 and its files 0600; a looser mode found is tightened, with a warning.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import tempfile
from pathlib import Path

import platformdirs

from facewatch import APP

log = logging.getLogger("facewatch.paths")

# Missing on Windows, where links and FIFOs are not planted by ordinary users the same way: 0 keeps the flags valid.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _base(kind: str) -> Path:
    """Return the user directory of one kind; FACEWATCH_HOME (tests, portable installs) overrides them all."""
    home = os.environ.get("FACEWATCH_HOME")
    if home:
        return Path(home) / kind
    finder = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "state": platformdirs.user_state_dir,
        "cache": platformdirs.user_cache_dir,
    }[kind]
    return Path(finder(APP))


def config_dir() -> Path:
    """Where the user's config.yaml lives."""
    return _base("config")


def data_dir() -> Path:
    """Where the gallery and its embedding cache live (biometric data: user-only)."""
    return _base("data")


def state_dir() -> Path:
    """Where the event log and the single-instance lock live."""
    return _base("state")


def cache_dir() -> Path:
    """Where downloaded and converted model files live by default."""
    return _base("cache")


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed, user-only (0700); an existing `path` looser than 0700 is tightened
    (rule 3) when it is one of facewatch's own dirs. Anything but a folder there raises NotAFolder with one line."""
    missing = list(itertools.takewhile(lambda d: not os.path.lexists(d), [path, *path.parents]))
    for directory in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode (0755)
        directory.mkdir(mode=0o700, exist_ok=True)
    try:
        info = path.stat()
    except OSError as exc:
        raise NotAFolder(f"{path}: cannot be used as a folder ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise NotAFolder(f"{path}: is {describe_kind(info.st_mode)}, not a folder; move it away")
    if _is_own(path):  # a gallery.dir such as ~/Pictures is the user's to set modes on
        _tighten(path, info.st_mode, 0o700, lambda mode: os.chmod(path, mode))
    return path


def _is_own(path: Path) -> bool:
    """True for a folder inside (or being) one of facewatch's four user dirs."""
    bases = [_base(kind) for kind in ("config", "data", "state", "cache")]
    return any(path == base or base in path.parents for base in bases)


class NotRegularFile(OSError):
    """Something that is not a plain file (a FIFO, device, folder, symlink) sits where facewatch keeps a file;
    `kind` says what it is, in words."""

    def __init__(self, message: str, kind: str = "not a regular file") -> None:
        super().__init__(message)
        self.kind = kind


class FileTooLarge(OSError):
    """A file bigger than its reader's bound; `size` is what it holds (or at least holds)."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path}: larger than {limit} bytes")
        self.size = size


class NotAFolder(OSError):
    """Something that is not a folder sits where facewatch keeps a folder."""


def describe_kind(mode: int) -> str:
    """What a file mode says the file is, in words for one-line messages."""
    for test, words in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file")):
        if test(mode):
            return words
    return "not a regular file"


def _tighten(path: Path, mode: int, wanted: int, chmod) -> None:
    """Rule 3: drop group/other bits a facewatch file or dir should not have, saying so once."""
    if os.name == "nt" or not stat.S_IMODE(mode) & 0o077:
        return
    try:
        chmod(wanted)
    except OSError as exc:
        log.warning("%s is readable by others (mode %o) and cannot be tightened (%s)",
                    path, stat.S_IMODE(mode), exc.strerror or exc)
        return
    log.warning("%s had mode %o (others could read it); tightened to %o", path, stat.S_IMODE(mode), wanted)


def open_private(path: Path, flags: int) -> int:
    """Open (creating 0600) a facewatch file by rules 1-3 and return the descriptor; NotRegularFile otherwise."""
    private_dir(path.parent)
    try:
        fd = os.open(path, flags | os.O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
    except OSError as exc:
        # ELOOP: a symlink at the name (O_NOFOLLOW); ENXIO: a FIFO nobody reads (O_NONBLOCK write).
        if os.path.islink(path) or exc.errno == errno.ENXIO or os.path.isdir(path):
            raise _refusal(path) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refusal(path, info.st_mode)
        _tighten(path, info.st_mode, 0o600, lambda mode: os.fchmod(fd, mode))
        if O_NONBLOCK:  # a regular file never blocks anyway; clear it so writes behave as usual
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refusal(path: Path, mode: int | None = None) -> NotRegularFile:
    """Rule 2's one line, naming what was found."""
    if mode is None:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = 0
    kind = describe_kind(mode)
    return NotRegularFile(f"{path} is {kind}, not a regular file; facewatch will not write through it "
                          "(move it away)", kind)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, read without blocking on a FIFO or device (rule 2):
    NotRegularFile or FileTooLarge otherwise, before more than `limit` bytes are read."""
    fd = os.open(path, os.O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = describe_kind(info.st_mode)
            raise NotRegularFile(f"{path} is {kind}, not a regular file", kind)
        if info.st_size > limit:
            raise FileTooLarge(path, info.st_size, limit)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):  # the size may grow after fstat
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(path, total, limit)
    finally:
        os.close(fd)
    return b"".join(chunks)


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, created 0600: a crash mid-write leaves the old file intact."""
    private_dir(path.parent)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):  # rule 2: a planted link or FIFO is refused, not replaced
        raise _refusal(path, mode)
    # mkstemp creates the file 0600 with O_EXCL (no link followed), so the data is never readable by others.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_private_append(path: Path):
    """Open `path` for appending text, created 0600 if new, by rules 1-3 (event logs hold identities)."""
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8")
