"""What `facewatch run` shows on the console: one live status line and every decision as it happens.

On a terminal the status line is rewritten in place; piped to a file or journal it becomes a plain line every
PLAIN_EVERY_S, so logs stay readable. Decisions (lock, notify, camera, unlock, pause) arrive from the event
log's listeners, so none is missed between two status refreshes; dry-run locks are shown like real ones.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, MutableMapping, TextIO

POLL_S = 0.5  # how often the status line is refreshed
PLAIN_EVERY_S = 30.0  # without a terminal: one status line this often
# Events worth a line of their own; face passes and count changes show in the status line instead.
DECISIONS = ("lock", "notify", "camera", "unlocked", "paused", "resumed", "ended")


def quiet_native_logs(env: MutableMapping[str, str] = os.environ, verbose: bool = False) -> None:
    """Silence OpenCV, its FFmpeg and its Qt before cv2 is first imported (each reads its variable once then).

    A user's own setting wins (setdefault); --verbose keeps everything.
    """
    if verbose:
        return
    env.setdefault("OPENCV_LOG_LEVEL", "OFF")  # camera-probe warnings for every index tried
    env.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET: decoder chatter on damaged frames/streams
    # The wheel's Qt warns "QFontDatabase: Cannot find font directory .../cv2/qt/fonts" (uncategorised, so
    # "default") on every preview window; cv2 points QT_QPA_FONTDIR at that empty folder itself, on import.
    env.setdefault("QT_LOGGING_RULES", "default.warning=false;qt.qpa.*=false;*.debug=false")


def status_line(state: Any) -> str:
    """The daemon's State in one line: what it does, who is in view, how much it has processed."""
    people = f"{state.people} in view" + (f": {', '.join(state.identities)}" if state.identities else "")
    return f"{state.status} | {people} | {state.frames} frames, {state.face_passes} face passes"


def decision_line(event: dict[str, Any]) -> str | None:
    """One line for a decision event, or None for events that are not decisions."""
    kind = event.get("event")
    if kind not in DECISIONS:
        return None
    if kind == "lock":
        if event.get("method") == "dry-run":
            return f"LOCK (dry run, not locked): {event.get('reason')}"
        if event.get("ok"):
            how = event.get("method", "")
            confirmed = {True: "confirmed", False: "not confirmed", None: "unconfirmed"}[event.get("confirmed")]
            return f"LOCKED by {how} ({confirmed}): {event.get('reason')}"
        return f"LOCK FAILED: {event.get('reason')}: {event.get('detail', '')}"
    if kind == "notify":
        return f"notified: {event.get('reason')}"
    if kind == "camera":
        extra = f" (released in {event['yield_ms']:.0f} ms)" if event.get("yield_ms") is not None else ""
        return f"camera: {event.get('state')}{extra}"
    if kind == "unlocked":
        return f"unlocked ({event['how']})" if event.get("how") else "unlocked"
    if kind == "paused":
        seconds = event.get("seconds")
        return "paused until resumed" if seconds is None else f"paused for {seconds:g} s"
    return kind


class Console:
    """Prints the status line and the decisions for one daemon; start() runs the refresher thread."""

    def __init__(self, read_state: Callable[[], Any], stream: TextIO = sys.stderr, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read_state = read_state
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._lock = threading.Lock()
        self._shown = ""  # the status text on the terminal now (TTY), to clear it before a decision line
        self._plain_at = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        """EventLog listener: print a decision on its own line, above the status line."""
        line = decision_line(event)
        if line is None:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", time.time())))
        with self._lock:
            self._write(f"{stamp} {line}\n")
            if self._tty and self._shown:
                self._stream.write(self._shown)
                self._stream.flush()

    def refresh(self) -> None:
        """Show the current status: rewritten in place on a TTY, a plain line every PLAIN_EVERY_S otherwise."""
        text = status_line(self._read_state())
        with self._lock:
            if self._tty:
                if text != self._shown:
                    self._stream.write("\r\x1b[K" + text)
                    self._stream.flush()
                    self._shown = text
                return
            now = self._clock()
            if now - self._plain_at >= PLAIN_EVERY_S:
                self._plain_at = now
                self._write(f"{time.strftime('%H:%M:%S')} status: {text}\n")

    def _write(self, text: str) -> None:
        """Under the lock: write a full line, first clearing the status line on a TTY."""
        if self._tty and self._shown:
            self._stream.write("\r\x1b[K")
        self._stream.write(text)
        self._stream.flush()

    def filter(self, record: object) -> bool:
        """A logging filter for the console's log handlers: a log line first clears the status line (TTY),
        and the next refresh draws it again below."""
        if self._tty:
            with self._lock:
                if self._shown:
                    self._stream.write("\r\x1b[K")
                    self._stream.flush()
                    self._shown = ""
        return True

    def start(self) -> Console:
        """Refresh every POLL_S in a daemon thread until close()."""
        self._thread = threading.Thread(target=self._run, name="facewatch-console", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.refresh()

    def close(self) -> None:
        """Stop refreshing and end the status line, so the shell prompt starts on a fresh line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.refresh()
        with self._lock:
            if self._tty and self._shown:
                self._stream.write("\n")
                self._stream.flush()
                self._shown = ""
