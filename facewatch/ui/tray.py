"""The tray icon: the daemon's state as a coloured shield, and a menu to pause, resume, enroll, open files, quit.

The watch loop runs in its own thread and never waits on the GUI. The icon is refreshed by a small thread that
polls Daemon.state every POLL_S: a paused or camera-lost loop calls no on_frame hook, so polling is what sees it.
pystray is imported only when the icon is built: on Linux it connects to the X display at import time.

Which backend shows the icon on Linux (unless PYSTRAY_BACKEND names a pystray one); Windows and macOS use pystray:
1. A StatusNotifierWatcher on the session bus: facewatch.ui.sni, a full menu without PyGObject.
2. Else an X11 system tray (an owner of _NET_SYSTEM_TRAY_S<screen>): pystray, which docks there.
3. Else, with a session bus and a display, the StatusNotifierItem anyway, waiting for a panel to start (the
   login race); one line says so.
4. Else a TrayError, one line: pystray would log "Failed to dock icon" tracebacks forever, showing nothing.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PIL import Image, ImageDraw

from facewatch import APP
from facewatch.daemon import Daemon, State
from facewatch.paths import open_private_append, private_dir
from facewatch.tracking.tracks import UNKNOWN

if TYPE_CHECKING:
    from facewatch.ui.dbusservice import Service

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often the icon looks at the daemon state
STOP_TIMEOUT_S = 3.0  # how long run() waits for the icon's own loop to end after quit()
ICON_SIZE = 64
_SCALE = 4  # the glyph is drawn this many times larger, then scaled down: smooth edges without an AA library
PAUSE_SHORT_S = 5 * 60
PAUSE_LONG_S = 60 * 60

# Icon colour per look (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "watching": (34, 160, 70),  # green: watching, nobody unknown in view
    "unknown": (215, 38, 38),  # red: an unknown face is in view
    "paused": (128, 128, 128),  # grey: paused by the user
    "camera lost": (240, 160, 0),  # amber: no frames, reconnecting
    "ended": (25, 25, 25),  # black: the loop stopped (video ended, stop requested)
    "error": (120, 0, 0),  # dark red: the loop crashed
}

Opener = Callable[[Path], None]


class TrayError(RuntimeError):
    """The tray cannot be shown (no display, no usable pystray backend); the message says what to do instead."""


def look(state: State, error: str | None = None) -> str:
    """Which COLOURS entry shows this state: error, ended, paused, camera lost, unknown (in view) or watching."""
    if error:
        return "error"
    if state.status in ("ended", "stopped"):
        return "ended"
    if state.status in ("paused", "camera lost"):
        return state.status
    return "unknown" if UNKNOWN in state.identities else "watching"


def status_text(state: State, now: float, error: str | None = None) -> str:
    """One line for the menu and the tooltip: what the daemon is doing and who is in view."""
    if error:
        return f"Error: {error}"
    if state.status == "paused":
        if state.paused_until is None or math.isinf(state.paused_until):
            return "Paused until resumed"
        minutes = max(1, math.ceil((state.paused_until - now) / 60))
        return f"Paused: {minutes} min left"
    if state.status == "camera lost":
        return "Camera lost: reconnecting"
    if state.status == "ended":
        return "Stopped: the video ended"
    if state.status == "stopped":
        return "Stopped"
    if state.status == "starting":
        return "Starting"
    if not state.identities:
        return "Watching: nobody in view"
    return f"Watching: {', '.join(state.identities)}"


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], n: int = 12) -> list:
    """Points along a quadratic Bezier curve from p0 to p2 pulled towards p1."""
    return [
        ((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0],
         (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1])
        for t in (i / n for i in range(n + 1))
    ]


@functools.lru_cache(maxsize=None)
def draw_icon(kind: str) -> Image.Image:
    """The 64x64 RGBA glyph for a look: a shield in the look's colour with a white eye on it."""
    colour = COLOURS[kind]
    s = _SCALE
    big = Image.new("RGBA", (ICON_SIZE * s, ICON_SIZE * s), (0, 0, 0, 0))
    pen = ImageDraw.Draw(big)
    # Shield: flat shoulders, straight sides, curved flanks meeting in a point at the bottom.
    right = [(32, 3), (55, 10), (55, 30)] + _bezier((55, 30), (53, 50), (32, 61))[1:]
    left = [(64 - x, y) for x, y in reversed(right)][1:-1]
    outline = tuple(int(c * 0.55) for c in colour)
    pen.polygon([(x * s, y * s) for x, y in right + left], fill=colour, outline=outline, width=2 * s)
    # Eye: an almond of two arcs, a dark iris and a glint.
    eye = _bezier((15, 33), (32, 17), (49, 33))[:-1] + _bezier((49, 33), (32, 49), (15, 33))[:-1]
    pen.polygon([(x * s, y * s) for x, y in eye], fill=(255, 255, 255))
    pen.ellipse([(32 - 7) * s, (33 - 7) * s, (32 + 7) * s, (33 + 7) * s], fill=(30, 30, 30))
    pen.ellipse([(29 - 2) * s, (30 - 2) * s, (29 + 2) * s, (30 + 2) * s], fill=(255, 255, 255))
    return big.resize((ICON_SIZE, ICON_SIZE), Image.Resampling.LANCZOS)


def on_black(image: Image.Image) -> Image.Image:
    """The icon composited on black, as an RGB image: for pystray's X11 backend, which has no transparency and
    drops alpha; giving it opaque pixels avoids the bright fringe its own rescaling of RGBA leaves."""
    return Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image).convert("RGB")


def open_path(path: Path) -> None:
    """Open a file or folder with the desktop's default application, without waiting for it."""
    if sys.platform == "win32":
        os.startfile(path)
        return
    command = ["open" if sys.platform == "darwin" else "xdg-open", str(path)]
    subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


@dataclass(frozen=True)
class MenuEntry:
    """One menu item, kept apart from pystray so the menu can be built and tested without a display."""

    text: str | Callable[[], str]
    action: Callable[[], Any] | None = None
    enabled: Callable[[], bool] = lambda: True

    @property
    def label(self) -> str:
        """The text shown now."""
        return self.text() if callable(self.text) else self.text


SEPARATOR = None  # a line between menu groups


class TrayApp:
    """The tray icon over a Daemon: reads its state, calls its pause/resume/stop, never blocks its loop."""

    def __init__(self, daemon: Daemon, on_enroll: Callable[[], None], gallery_dir: Path, log_path: Path,
                 opener: Opener = open_path) -> None:
        self.daemon = daemon
        self.on_enroll = on_enroll
        self.gallery_dir = gallery_dir
        self.log_path = log_path
        self.opener = opener
        self.error: str | None = None  # set when the watch loop crashed
        self.icon: Any = None  # the pystray.Icon, once built
        self._opaque = False  # the backend shows no transparency (plain X11): give it on_black images
        self._shown: tuple[str, str] | None = None  # (look, title) last given to the icon
        self._closing = threading.Event()
        self._icon_done = threading.Event()
        self._enrolling = threading.Lock()
        self.entries: list[MenuEntry | None] = [
            MenuEntry(self.status_line, enabled=lambda: False),
            SEPARATOR,
            MenuEntry("Pause 5 minutes", lambda: self.daemon.pause(PAUSE_SHORT_S), self._watching),
            MenuEntry("Pause 1 hour", lambda: self.daemon.pause(PAUSE_LONG_S), self._watching),
            MenuEntry("Resume", self.daemon.resume, self._paused),
            SEPARATOR,
            MenuEntry("Enroll me now", self.enroll, lambda: not self._enrolling.locked()),
            MenuEntry("Open reference_faces folder", self.open_gallery),
            MenuEntry("Open event log", self.open_log),
            SEPARATOR,
            MenuEntry("Quit", self.quit),
        ]

    # ------------------------------------------------------------------------------------------ what is shown

    def status_line(self) -> str:
        """The daemon's state in words (the first, disabled menu item)."""
        return status_text(self.daemon.state, self.daemon.clock(), self.error)

    def title(self) -> str:
        """The icon's tooltip."""
        return f"{APP}: {self.status_line()}"

    def look(self) -> str:
        """The icon's current look (a COLOURS key)."""
        return look(self.daemon.state, self.error)

    def image(self, kind: str) -> Image.Image:
        """The icon image for a look, in the form the backend shows best."""
        return on_black(draw_icon(kind)) if self._opaque else draw_icon(kind)

    def refresh(self) -> bool:
        """Give the icon a new image/title when the state changed; True when something changed."""
        shown = (self.look(), self.title())
        if shown == self._shown or self.icon is None:
            return False
        if self._shown is None or shown[0] != self._shown[0]:
            self.icon.icon = self.image(shown[0])
        self.icon.title = shown[1]
        self.icon.update_menu()
        _flush_x11(self.icon)
        self._shown = shown
        return True

    # ------------------------------------------------------------------------------------------ menu actions

    def _watching(self) -> bool:
        return self.daemon.state.status in ("starting", "watching", "camera lost")

    def _paused(self) -> bool:
        return self.daemon.state.status == "paused"

    def enroll(self) -> threading.Thread | None:
        """Run on_enroll in a worker thread, one at a time, so neither the menu nor the loop waits for it."""
        if not self._enrolling.acquire(blocking=False):
            return None
        worker = threading.Thread(target=self._enroll_worker, name=f"{APP}-enroll", daemon=True)
        worker.start()
        return worker

    def _enroll_worker(self) -> None:
        try:
            self.on_enroll()
        except Exception:  # a failed enrolment must not take the tray down; the log says why
            log.exception("enrolment failed")
        finally:
            self._enrolling.release()

    def open_gallery(self) -> None:
        """Open the reference_faces folder (created user-only if missing) in the file manager."""
        self._open(private_dir(self.gallery_dir))

    def open_log(self) -> None:
        """Open the event log (created empty and 0600 if missing) in the default text viewer."""
        open_private_append(self.log_path).close()
        self._open(self.log_path)

    def _open(self, path: Path) -> None:
        try:
            self.opener(path)
        except OSError as exc:
            log.error("cannot open %s: %s (on Linux, xdg-open comes with the xdg-utils package)", path, exc)

    def quit(self) -> None:
        """Stop the watch loop and the icon; safe from any thread (menu, signal handler), never blocks."""
        self.daemon.stop()
        self._closing.set()

    # ------------------------------------------------------------------------------------------ running

    def start_daemon(self) -> threading.Thread:
        """Run the watch loop in its own thread; a crash shows as the error look instead of killing the tray."""
        thread = threading.Thread(target=self._run_daemon, name=f"{APP}-loop")
        thread.start()
        return thread

    def _run_daemon(self) -> None:
        try:
            self.daemon.run()
        except Exception as exc:  # shown in the tray; the traceback goes to the log
            log.exception("the watch loop failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def build_icon(self, sni: Service | None) -> None:
        """Create the icon: a StatusNotifierItem on the session-bus Service `sni`, or with pystray when None
        (choose_backend() picks which)."""
        if sni is not None:
            from facewatch.ui.sni import SniIcon

            self.icon = SniIcon(sni, APP, self.image(self.look()), self.title(), self.entries)
            return
        pystray = _load_pystray()
        if not pystray.Icon.HAS_MENU:
            log.warning("the %s tray backend shows the state but no menu and takes no clicks; for the menu use a "
                        "panel that hosts StatusNotifierItems (KDE, XFCE, Cinnamon, GNOME with the AppIndicator "
                        "extension). Quit with Ctrl-C or SIGTERM meanwhile",
                        pystray.Icon.__module__.rsplit("._", 1)[-1])
        self._opaque = pystray.Icon.__module__.endswith("._xorg")
        items = [pystray.Menu.SEPARATOR if e is SEPARATOR else _menu_item(pystray, e) for e in self.entries]
        self.icon = pystray.Icon(APP, self.image(self.look()), self.title(), menu=pystray.Menu(*items))

    def run(self) -> None:
        """Show the icon until quit(). On macOS the icon loop must own this (main) thread; elsewhere it runs in a
        daemon thread, so a backend loop that fails to end (a known pystray issue) cannot keep the process alive."""
        if self.icon is None:
            self.build_icon(choose_backend())
        if sys.platform == "darwin":
            self._run_icon()
        else:
            threading.Thread(target=self._run_icon, name=f"{APP}-tray", daemon=True).start()
        self._closing.wait()
        self._icon_done.wait(STOP_TIMEOUT_S)

    def _run_icon(self) -> None:
        """The icon's event loop; when it ends, for whatever reason, the app quits."""
        try:
            self.icon.run(setup=self._setup)
        finally:
            self._icon_done.set()
            self.quit()

    def _setup(self, icon: Any) -> None:
        """pystray's setup hook: show the icon, then keep it in step with the daemon from a watcher thread."""
        icon.visible = True
        threading.Thread(target=self._watch, name=f"{APP}-tray-watch", daemon=True).start()

    def _watch(self) -> None:
        """Refresh every POLL_S until quit(), then stop the icon from this same thread (no refresh races it)."""
        while not self._closing.wait(POLL_S):
            self.refresh()
        if not self._icon_done.is_set():
            self.icon.stop()
            _flush_x11(self.icon)


def _flush_x11(icon: Any) -> None:
    """Send what pystray's X11 backend queued in its event thread. python-xlib sends from one thread at a time, so
    a change queued there while this thread was still flushing waits for the next X event, which may never come."""
    display = getattr(icon, "_display", None)  # only the xorg backend has one
    if display is not None:
        display.flush()


def _menu_item(pystray: Any, entry: MenuEntry) -> Any:
    """A pystray.MenuItem for a MenuEntry, with its text and enabled state read each time the menu is shown."""
    return pystray.MenuItem(
        lambda _item: entry.label,
        lambda _icon, _item: entry.action() if entry.action else None,
        enabled=lambda _item: entry.enabled(),
    )


def choose_backend() -> Service | None:
    """Which backend shows the icon (module rules 1-4): a connected session-bus Service for a StatusNotifierItem,
    None for pystray, or TrayError when nothing can show it. Cheap: call it before loading the models."""
    if not sys.platform.startswith("linux") or os.environ.get("PYSTRAY_BACKEND"):
        return None
    from facewatch.ui.dbusservice import BusError, connect_session_bus
    from facewatch.ui.sni import watcher_present

    service, no_bus = None, ""
    try:
        service = connect_session_bus()
        if watcher_present(service):  # rule 1
            return service
    except BusError as exc:
        no_bus = f"; {exc}"
    x11_tray = _x11_tray_present()
    if service is not None and not no_bus and not x11_tray and _has_display():  # rule 3
        log.warning("no tray host on this desktop yet (no StatusNotifierWatcher on the session bus, no X11 system "
                    "tray): watching without an icon until a panel with a tray starts; quit with Ctrl-C or SIGTERM")
        return service
    if service is not None:
        service.close()
    if x11_tray:  # rule 2
        return None
    if not _has_display():
        raise TrayError(f"cannot show a tray icon (no display{no_bus}). The tray needs a desktop session "
                        f"(DISPLAY or WAYLAND_DISPLAY set); `facewatch run` watches without one.")
    raise TrayError(f"cannot show a tray icon: this desktop has no tray host (no StatusNotifierWatcher"
                    f"{no_bus or ' on the session bus'}; no X11 system tray). Start a panel with a tray, or watch "
                    f"without an icon with `facewatch run`.")  # rule 4


def _has_display() -> bool:
    """Whether this process is in a graphical session (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _x11_tray_present() -> bool:
    """Whether an X11 system tray (the XEmbed protocol pystray's X11 backend docks into) runs on DISPLAY."""
    if not os.environ.get("DISPLAY"):
        return False
    try:
        import Xlib.display
        import Xlib.X

        display = Xlib.display.Display()
    except Exception:  # no python-xlib, or the display refuses us: no X11 tray to dock into
        return False
    try:
        selection = display.intern_atom(f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}")
        return display.get_selection_owner(selection) != Xlib.X.NONE
    finally:
        display.close()


def _load_pystray() -> Any:
    """Import pystray, turning its display errors (raised at import on Linux) into a TrayError that says why."""
    try:
        import pystray
    except Exception as exc:  # Xlib raises its own error types when the display is missing or refuses us
        raise TrayError(
            f"cannot show a tray icon ({type(exc).__name__}: {exc}). The tray needs a desktop session "
            f"(DISPLAY or WAYLAND_DISPLAY set); `facewatch run` watches without one."
        ) from None
    return pystray


def run_with_tray(daemon: Daemon, sni: Service | None, on_enroll: Callable[[], None], gallery_dir: Path,
                  log_path: Path, opener: Opener = open_path) -> State:
    """Run the watch loop in a thread under a tray icon until Quit, Ctrl-C or SIGTERM; return the final state.

    `sni` is choose_backend()'s answer, asked before the daemon is built so that a desktop without a tray fails
    (TrayError) before the models load and the camera opens.
    """
    app = TrayApp(daemon, on_enroll, gallery_dir, log_path, opener)
    app.build_icon(sni)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: app.quit())
    loop = app.start_daemon()
    try:
        app.run()
    finally:
        app.quit()
        loop.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return daemon.state
