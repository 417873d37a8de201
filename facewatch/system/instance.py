"""One `facewatch run` per user: an exclusive OS lock on a file in the user state dir, naming the holder's PID.

The OS drops the lock when the holding process ends, however it ends, so a crash never leaves a stale lock;
the file itself stays (deleting a lock file races with the next holder) and only carries the PID for messages.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from facewatch.paths import private_dir, state_dir

log = logging.getLogger("facewatch.system.instance")

LOCK_NAME = "facewatch.lock"
# Windows locks byte ranges and a locked range cannot be read by others: lock one byte far past the PID text.
_WINDOWS_LOCK_OFFSET = 1 << 20


class AlreadyRunning(Exception):
    """Another process holds the instance lock; `pid` is its process id (None when the lock file names none)."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"facewatch is already running (pid {pid if pid is not None else 'unknown'})")
        self.pid = pid


def lock_path() -> Path:
    """The lock file of this user: <state dir>/facewatch.lock."""
    return state_dir() / LOCK_NAME


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting: True if taken, False if another process holds it."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):  # the byte is locked by another process
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # EWOULDBLOCK: another open file description holds it
        return False
    return True


def _unlock(fd: int) -> None:
    """Give the lock back (closing the descriptor would too; this makes it explicit and immediate)."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def holder_pid(path: Path) -> int | None:
    """The PID written in the lock file, or None if it is missing, empty or not a number."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


class InstanceLock:
    """The single-instance lock: `with InstanceLock(): ...` or acquire()/release(); AlreadyRunning if held elsewhere.

    A lock file that cannot be created or locked at all (read-only state dir, a filesystem without locks)
    logs one warning and runs unguarded: a missing guard is no reason to leave the screen unwatched.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else lock_path()
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock and write our PID into the file; raise AlreadyRunning naming the holder's PID."""
        try:
            private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot create the lock file %s (%s); not guarding against a second instance",
                        self.path, exc.strerror or exc)
            return self
        try:
            taken = _try_lock(fd)
        except OSError as exc:
            os.close(fd)
            log.warning("cannot lock %s (%s); not guarding against a second instance", self.path, exc.strerror or exc)
            return self
        if not taken:
            os.close(fd)
            raise AlreadyRunning(holder_pid(self.path))
        self._fd = fd
        with contextlib.suppress(OSError):  # a full disk: the lock holds, only the PID for messages is missing
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return self

    def release(self) -> None:
        """Give the lock up (the file stays, with the last holder's PID)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        """Acquire on entering the block."""
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        """Release on leaving the block, however it is left."""
        self.release()


def run_exclusively(work: Callable[[], int]) -> int:
    """Run `work` holding the instance lock: its exit code, or 1 with one line naming the running instance."""
    try:
        with InstanceLock():
            return work()
    except AlreadyRunning as exc:
        print(exc, file=sys.stderr)
        return 1
