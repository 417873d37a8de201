"""Tray icon: colour per state, status text, menu actions on a real Daemon, and the real pystray backend under Xvfb."""

from __future__ import annotations

import gc
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.desktop import need_program, start_xvfb, stop, wait_for
from helpers.sni_host import Host, Watcher

from facewatch.capture import FramePacket
from facewatch.daemon import Daemon, Loop, State
from facewatch.detectors.base import Detection, Face
from facewatch.events import EventLog
from facewatch.identity.matching import Match
from facewatch.identity.pipeline import Identified
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger
from facewatch.ui.tray import (
    COLOURS,
    SEPARATOR,
    TrayApp,
    TrayError,
    choose_backend,
    draw_icon,
    look,
    on_black,
    run_with_tray,
    status_text,
)

FRAME_S = 0.02
INSIDE_SHIELD = (32, 12)  # a pixel of the shield's face, above the eye
IN_THE_EYE = (20, 33)  # a pixel of the eye's white


# ------------------------------------------------------------------------------------------- fakes


class FakeSource:
    """A camera stand-in: a blank frame every FRAME_S; `lost` makes it report a lost camera instead."""

    def __init__(self) -> None:
        self.state = "running"
        self.target_fps = 0.0
        self.index = 0
        self.lost = False

    def read(self, timeout: float) -> FramePacket:
        time.sleep(FRAME_S)
        self.index += 1
        if self.lost:
            self.state = "camera lost"
            return FramePacket(None, -1, self.index * FRAME_S)
        self.state = "running"
        return FramePacket(np.zeros((48, 64, 3), np.uint8), self.index, self.index * FRAME_S)

    def release(self) -> None:
        self.state = "released"

    def reopen(self) -> None:
        self.state = "running"

    def close(self) -> None:
        self.state = "closed"


class FakePeople:
    """Person detector stand-in: returns `boxes` as person detections; `fail` makes it raise."""

    def __init__(self) -> None:
        self.boxes: list[list[float]] = []
        self.fail = False

    def detect(self, frame):
        if self.fail:
            raise RuntimeError("detector exploded")
        return [Detection(np.array(b, np.float32), 0.9) for b in self.boxes]


class FakeFaces:
    """Face pass stand-in: one face filling each person box, matched to `name` (None = unknown)."""

    def __init__(self, people: FakePeople) -> None:
        self.people = people
        self.name: str | None = None

    def identify(self, image_rgb, gallery, matcher):
        return [Identified(Face(np.array(b, np.float32), 0.99), Match(self.name, 0.9)) for b in self.people.boxes]

    def warm(self, pass_coming: bool) -> None:
        """No network to load or release."""


def make_daemon(tmp_path: Path) -> Daemon:
    """A real Daemon over fake camera, detector and face pass; trigger, tracker and event log are real."""
    people = FakePeople()
    loop = Loop(source=FakeSource(), person=people, faces=FakeFaces(people), gallery=None, matcher=None,
                trigger=CountTrigger(0.0, 0.0), tracker=Tracker(0.3, 0.2, 2.0),
                events=EventLog(tmp_path / "events.jsonl"), fps=50, active_fps=50)
    return Daemon(loop)


@pytest.fixture
def app(tmp_path):
    """A TrayApp over a running real Daemon; opened paths and enrolments are recorded; stopped afterwards."""
    daemon = make_daemon(tmp_path)
    opened: list[Path] = []
    enrolled = threading.Event()
    release = threading.Event()

    def on_enroll():
        enrolled.thread = threading.current_thread()
        enrolled.set()
        release.wait(5)

    tray = TrayApp(daemon, on_enroll, tmp_path / "reference_faces", tmp_path / "state" / "events.jsonl",
                   opener=opened.append)
    tray.opened, tray.enrolled, tray.release_enroll = opened, enrolled, release
    loop = tray.start_daemon()
    wait_for(lambda: daemon.state.status == "watching", what="the loop to start")
    yield tray
    release.set()
    tray.quit()
    loop.join(5)
    assert not loop.is_alive()


def entry(tray: TrayApp, label: str):
    """The menu entry with this label."""
    return next(e for e in tray.entries if e is not SEPARATOR and e.label == label)


# ------------------------------------------------------------------------------------------- icon and text


@pytest.mark.parametrize("kind", list(COLOURS))
def test_icon_colour_per_look(kind):
    image = draw_icon(kind)
    assert image.size == (64, 64) and image.mode == "RGBA"
    assert image.getpixel(INSIDE_SHIELD) == (*COLOURS[kind], 255)
    assert image.getpixel(IN_THE_EYE) == (255, 255, 255, 255)
    assert image.getpixel((0, 0))[3] == 0  # transparent corner


def test_on_black_is_opaque_without_fringe():
    """What the alpha-less X11 backend gets: edge pixels darkened by their alpha, never brighter than the glyph."""
    image = on_black(draw_icon("unknown"))
    assert image.mode == "RGB" and image.size == (64, 64)
    assert image.getpixel((0, 0)) == (0, 0, 0)
    assert image.getpixel(INSIDE_SHIELD) == COLOURS["unknown"]
    rgba = np.asarray(draw_icon("unknown")).astype(int)
    flat = np.asarray(image).astype(int)
    assert np.abs(flat - rgba[..., :3] * rgba[..., 3:] / 255).max() <= 1


def test_colours_are_the_documented_ones():
    assert COLOURS == {
        "watching": (34, 160, 70), "unknown": (215, 38, 38), "paused": (128, 128, 128),
        "camera lost": (240, 160, 0), "ended": (25, 25, 25), "error": (120, 0, 0),
    }


@pytest.mark.parametrize("state, expected", [
    (State(status="starting"), "watching"),
    (State(status="watching", people=1, identities=("alice",)), "watching"),
    (State(status="watching", people=2, identities=("alice", "unknown")), "unknown"),
    (State(status="watching", people=1, identities=("unverified",)), "watching"),
    (State(status="paused", identities=("unknown",), paused_until=100.0), "paused"),
    (State(status="camera lost"), "camera lost"),
    (State(status="ended"), "ended"),
    (State(status="stopped"), "ended"),
])
def test_look_per_state(state, expected):
    assert look(state) == expected
    assert look(state, error="boom") == "error"


@pytest.mark.parametrize("state, text", [
    (State(status="starting"), "Starting"),
    (State(status="watching"), "Watching: nobody in view"),
    (State(status="watching", people=2, identities=("alice", "unknown")), "Watching: alice, unknown"),
    (State(status="paused", paused_until=1000.0 + 300), "Paused: 5 min left"),
    (State(status="paused", paused_until=1000.0 + 61), "Paused: 2 min left"),
    (State(status="paused", paused_until=1000.0 + 5), "Paused: 1 min left"),
    (State(status="paused", paused_until=float("inf")), "Paused until resumed"),
    (State(status="camera lost"), "Camera lost: reconnecting"),
    (State(status="ended"), "Stopped: the video ended"),
    (State(status="stopped"), "Stopped"),
])
def test_status_text(state, text):
    assert status_text(state, now=1000.0) == text
    assert status_text(state, now=1000.0, error="RuntimeError: x") == "Error: RuntimeError: x"


# ------------------------------------------------------------------------------------------- menu on a real Daemon


def test_menu_labels_and_enabled_states(app):
    labels = [None if e is SEPARATOR else e.label for e in app.entries]
    assert labels == ["Watching: nobody in view", None, "Pause 5 minutes", "Pause 1 hour", "Resume", None,
                      "Enroll me now", "Open reference_faces folder", "Open event log", None, "Quit"]
    enabled = {e.label: e.enabled() for e in app.entries if e is not SEPARATOR}
    assert enabled == {"Watching: nobody in view": False, "Pause 5 minutes": True, "Pause 1 hour": True,
                       "Resume": False, "Enroll me now": True, "Open reference_faces folder": True,
                       "Open event log": True, "Quit": True}


def test_pause_releases_the_camera_and_resume_reopens_it(app):
    daemon, source = app.daemon, app.daemon.loop.source
    entry(app, "Pause 5 minutes").action()
    state = daemon.state
    assert state.status == "paused"
    assert 299.0 < state.paused_until - daemon.clock() <= 300.0
    wait_for(lambda: source.state == "released", what="the loop to release the camera")
    frames = daemon.state.frames
    time.sleep(0.2)
    assert daemon.state.frames == frames  # no frame processed while paused
    assert app.status_line() == "Paused: 5 min left" and app.look() == "paused"
    assert entry(app, "Resume").enabled() and not entry(app, "Pause 1 hour").enabled()

    entry(app, "Resume").action()
    wait_for(lambda: daemon.state.frames > frames + 2, what="frames after resume")
    assert daemon.state.status == "watching" and source.state == "running"

    entry(app, "Pause 1 hour").action()
    assert app.status_line() == "Paused: 60 min left"
    events = [json.loads(line) for line in daemon.loop.events.path.read_text().splitlines()]
    logged = [(e["event"], e.get("seconds")) for e in events if e["event"] in ("paused", "resumed")]
    assert logged == [("paused", 300), ("resumed", None), ("paused", 3600)]


def test_unknown_face_and_lost_camera_show_in_the_icon(app):
    daemon = app.daemon
    daemon.loop.person.boxes = [[10, 5, 40, 45]]
    wait_for(lambda: daemon.state.identities == ("unknown",), what="the face pass to name the stranger")
    assert app.look() == "unknown" and app.status_line() == "Watching: unknown"
    daemon.loop.faces.name = "alice"
    daemon.loop.person.boxes = []
    wait_for(lambda: daemon.state.identities == (), what="the stranger to leave")
    assert app.look() == "watching"
    daemon.loop.source.lost = True
    wait_for(lambda: daemon.state.status == "camera lost", what="the camera to be lost")
    assert app.look() == "camera lost" and app.status_line() == "Camera lost: reconnecting"


def test_refresh_updates_the_icon_only_on_change(app):
    class Recorder:
        def __init__(self):
            self.images, self.titles, self.menus = [], [], 0

        icon = property(lambda self: self.images[-1], lambda self, v: self.images.append(v))
        title = property(lambda self: self.titles[-1], lambda self, v: self.titles.append(v))

        def update_menu(self):
            self.menus += 1

    app.icon = Recorder()
    assert app.refresh() is True
    assert app.refresh() is False
    app.daemon.pause(None)
    assert app.refresh() is True
    assert [im.getpixel(INSIDE_SHIELD)[:3] for im in app.icon.images] == [COLOURS["watching"], COLOURS["paused"]]
    assert app.icon.titles == ["facewatch: Watching: nobody in view", "facewatch: Paused until resumed"]
    assert app.icon.menus == 2


def test_enroll_runs_in_a_worker_thread_one_at_a_time(app):
    worker = app.enroll()
    assert app.enrolled.wait(5)
    assert app.enrolled.thread is worker and worker is not threading.current_thread()
    assert app.enroll() is None  # a second click while enrolling does nothing
    assert not entry(app, "Enroll me now").enabled()
    app.release_enroll.set()
    worker.join(5)
    assert entry(app, "Enroll me now").enabled()
    assert app.daemon.state.status == "watching"  # the loop kept running meanwhile


def test_enroll_failure_is_logged_not_raised(tmp_path, caplog):
    def broken():
        raise ValueError("no face found")

    tray = TrayApp(make_daemon(tmp_path), broken, tmp_path / "g", tmp_path / "log.jsonl")
    tray.enroll().join(5)
    assert "enrolment failed" in caplog.text and "no face found" in caplog.text
    assert entry(tray, "Enroll me now").enabled()


def test_open_gallery_and_log_create_private_paths(app, tmp_path):
    entry(app, "Open reference_faces folder").action()
    entry(app, "Open event log").action()
    assert app.opened == [tmp_path / "reference_faces", tmp_path / "state" / "events.jsonl"]
    assert stat.S_IMODE((tmp_path / "reference_faces").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "events.jsonl").stat().st_mode) == 0o600


def test_open_failure_is_logged(tmp_path, caplog):
    def missing(path):
        raise FileNotFoundError(2, "No such file or directory", "xdg-open")

    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl", opener=missing)
    tray.open_gallery()
    assert f"cannot open {tmp_path / 'g'}" in caplog.text and "xdg-utils" in caplog.text


def test_quit_stops_the_loop(app):
    entry(app, "Quit").action()
    wait_for(lambda: app.daemon.state.status == "stopped", what="the loop to stop")
    assert app.look() == "ended" and app.status_line() == "Stopped"
    assert app.daemon.loop.source.state == "closed"


def test_a_crashing_loop_shows_the_error(tmp_path):
    daemon = make_daemon(tmp_path)
    daemon.loop.person.fail = True
    tray = TrayApp(daemon, lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    tray.start_daemon().join(5)
    assert tray.look() == "error"
    assert tray.status_line() == "Error: RuntimeError: detector exploded"


@pytest.mark.skipif(sys.platform != "linux", reason="only pystray's Linux backends need a display to import")
def test_no_display_is_a_clear_error(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "pystray" or m.startswith("pystray.")]:
        monkeypatch.delitem(sys.modules, name)  # import afresh, as a process without a display would
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    with pytest.raises(TrayError) as caught:
        tray.build_icon(choose_backend())
    assert str(caught.value).startswith("cannot show a tray icon (")
    assert "The tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY set); `facewatch run` watches without one." \
        in str(caught.value)
    assert tray.icon is None


# ------------------------------------------------------------------------------------------- real backend, Xvfb


@pytest.fixture
def xdisplay(monkeypatch):
    """A private Xvfb server on a free display; DISPLAY points at it, and no session bus is reachable (so the
    pystray backends are what these tests see)."""
    pytest.importorskip("Xlib.display", reason="python-xlib (pystray's Linux dependency) is not installed")
    server, display = start_xvfb()
    monkeypatch.setenv("DISPLAY", display)
    for name in ("WAYLAND_DISPLAY", "PYSTRAY_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield display
    stop(server)


TRAY_HOST = ["trayer", "--edge", "top", "--align", "left", "--widthtype", "request", "--height", "32",
             "--transparent", "false"]


@pytest.fixture
def x11_tray(xdisplay):
    """trayer, a real X11 system tray, owning the tray selection on the Xvfb display."""
    need_program("trayer", "trayer", "it is the X11 tray host the pystray backend docks into")
    host = subprocess.Popen(TRAY_HOST, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    view = XView()
    try:
        wait_for(view.tray_host_ready, what="trayer to own the tray selection")
    finally:
        view.close()
    yield host
    stop(host)


class XView:
    """A second X client that looks at the icon window the way a tray host or the user would."""

    def __init__(self) -> None:
        import Xlib.display

        self.display = Xlib.display.Display()
        self.root = self.display.screen().root

    def icon_window(self):
        """The facewatch icon window, or None."""
        import Xlib.error

        def find(window):
            for child in window.query_tree().children:
                try:
                    if child.get_wm_class() == ("facewatchSystemTrayIcon", "facewatch"):
                        return child
                    found = find(child)
                except Xlib.error.BadWindow:  # destroyed while we looked
                    continue
                if found is not None:
                    return found
            return None

        return find(self.root)

    def title(self) -> str | None:
        window = self.icon_window()
        return None if window is None else window.get_wm_name()

    def pixel(self, point: tuple[int, int]) -> tuple[int, int, int] | None:
        """The RGB colour the icon window shows at a point of the 64 px glyph (scaled to the window), or None
        while the window is not viewable."""
        import Xlib.error
        import Xlib.X
        from PIL import Image

        window = self.icon_window()
        try:
            if window is None or window.get_attributes().map_state != Xlib.X.IsViewable:
                return None
            size = window.get_geometry()
            data = window.get_image(0, 0, size.width, size.height, Xlib.X.ZPixmap, 0xFFFFFFFF).data
        except (Xlib.error.BadMatch, Xlib.error.BadWindow, Xlib.error.BadDrawable):
            return None  # unmapped or reparented by the tray host between the check and the read: not viewable
        image = Image.frombytes("RGB", (size.width, size.height), data, "raw", "BGRX")
        return image.getpixel((point[0] * size.width // 64, point[1] * size.height // 64))

    def tray_host_ready(self) -> bool:
        import Xlib.X

        selection = self.display.intern_atom(f"_NET_SYSTEM_TRAY_S{self.display.get_default_screen()}")
        return self.display.get_selection_owner(selection) != Xlib.X.NONE

    def close(self) -> None:
        self.display.close()


def _start_tray(tray: TrayApp) -> tuple[threading.Thread, threading.Thread]:
    """Build the real icon, then run the loop and the tray in threads (as run_with_tray does in the main one)."""
    tray.build_icon(choose_backend())
    loop = tray.start_daemon()
    gui = threading.Thread(target=tray.run, name="test-tray")
    gui.start()
    return loop, gui


def _stop_tray(tray: TrayApp, loop: threading.Thread, gui: threading.Thread) -> None:
    """Quit, join both threads, and drop the icon while its X server still runs (its __del__ closes the display)."""
    tray.quit()
    gui.join(10)
    loop.join(10)
    assert not gui.is_alive() and not loop.is_alive()
    tray.icon = None
    gc.collect()


def test_real_backend_menu_actions_and_title(x11_tray, tmp_path):
    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl", opener=print)
    view = XView()
    loop, gui = _start_tray(tray)
    try:
        # The first appearance includes the backend's X connection and trayer docking the icon: slower than a
        # title change, and once over 5 s on a loaded 2-core CI run.
        wait_for(lambda: view.title() == "facewatch: Watching: nobody in view", 15.0, "the icon title")
        shown = [str(item) for item in tray.icon.menu]
        assert shown == ["Watching: nobody in view", "- - - -", "Pause 5 minutes", "Pause 1 hour", "Resume",
                         "- - - -", "Enroll me now", "Open reference_faces folder", "Open event log", "- - - -",
                         "Quit"]
        items = {str(item): item for item in tray.icon.menu}
        assert not items["Watching: nobody in view"].enabled and not items["Resume"].enabled

        items["Pause 5 minutes"](tray.icon)  # what the backend calls when the item is clicked
        assert tray.daemon.state.status == "paused"
        wait_for(lambda: view.title() == "facewatch: Paused: 5 min left", what="the paused title")
        assert items["Resume"].enabled

        items["Resume"](tray.icon)
        wait_for(lambda: view.title() == "facewatch: Watching: nobody in view", what="the watching title")

        items["Quit"](tray.icon)
        gui.join(10)
        loop.join(10)
        assert not gui.is_alive() and not loop.is_alive()
        assert tray.daemon.state.status == "stopped"
        wait_for(lambda: view.icon_window() is None, what="the icon window to be destroyed")
    finally:
        _stop_tray(tray, loop, gui)
        view.close()


def test_run_with_tray_until_sigterm(x11_tray, tmp_path):
    daemon = make_daemon(tmp_path)
    view = XView()
    before = signal.getsignal(signal.SIGTERM)
    failures = []

    def stop_when_shown():
        try:
            wait_for(lambda: view.title() == "facewatch: Watching: nobody in view", what="the icon title")
        except AssertionError as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # always: run_with_tray must return

    threading.Thread(target=stop_when_shown, daemon=True).start()
    final = run_with_tray(daemon, choose_backend(), lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    view.close()
    gc.collect()  # free the icon (a reference cycle) while its X server still runs
    assert not failures
    assert final.status == "stopped" and final.frames > 0
    assert daemon.loop.source.state == "closed"
    assert signal.getsignal(signal.SIGTERM) is before


def test_real_backend_draws_the_state_colour_in_a_tray_host(x11_tray, tmp_path):
    view = XView()
    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    try:
        loop, gui = _start_tray(tray)
        try:
            def shows(colour):
                pixel = view.pixel(INSIDE_SHIELD)  # the host scales the glyph: allow rounding
                return pixel is not None and max(abs(a - b) for a, b in zip(pixel, colour)) <= 3

            wait_for(lambda: shows(COLOURS["watching"]), what="the green icon")
            tray.daemon.pause(None)
            wait_for(lambda: shows(COLOURS["paused"]), what="the grey icon")
            tray.daemon.resume()
            wait_for(lambda: shows(COLOURS["watching"]), what="the green icon again")
        finally:
            _stop_tray(tray, loop, gui)
    finally:
        view.close()


# ------------------------------------------------------------------------------------------- StatusNotifierItem backend


MENU = ["Watching: nobody in view", "-", "Pause 5 minutes", "Pause 1 hour", "Resume", "-", "Enroll me now",
        "Open reference__faces folder", "Open event log", "-", "Quit"]  # "__": dbusmenu's escaped underscore


@pytest.fixture
def sni_host(session_bus, monkeypatch):
    """A session bus with a StatusNotifierWatcher on it (the test plays the tray host); no X display."""
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    watcher = Watcher()
    yield watcher
    watcher.close()


def _icon_colour(host: Host) -> tuple[int, int, int]:
    """The RGB the item's 64 px IconPixmap shows inside the shield."""
    width, _height, data = host.props()["IconPixmap"][-1]
    offset = (INSIDE_SHIELD[1] * width + INSIDE_SHIELD[0]) * 4
    return tuple(data[offset + 1:offset + 4])  # ARGB


@pytest.mark.skipif(sys.platform != "linux", reason="the StatusNotifierItem backend is the Linux one")
def test_sni_menu_read_and_clicked_over_dbus_drives_the_daemon(sni_host, tmp_path):
    from facewatch.ui.sni import SniIcon

    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl", opener=print)
    loop, gui = _start_tray(tray)
    host = None
    try:
        assert isinstance(tray.icon, SniIcon)
        wait_for(lambda: sni_host.items, what="the item to register with the watcher")
        host = Host(sni_host.items[0])
        wait_for(lambda: host.props()["ToolTip"][3] == "facewatch: Watching: nobody in view", what="the tooltip")
        assert [label for _, label, _ in host.labels()] == MENU
        enabled = {label: on for _, label, on in host.labels()}
        assert not enabled["Watching: nobody in view"] and not enabled["Resume"] and enabled["Pause 5 minutes"]
        assert _icon_colour(host) == COLOURS["watching"]

        host.click("Pause 5 minutes")
        assert tray.daemon.state.status == "paused"
        wait_for(lambda: host.props()["Title"] == "facewatch: Paused: 5 min left", what="the paused title")
        wait_for(lambda: _icon_colour(host) == COLOURS["paused"], what="the grey icon")
        assert {"NewIcon", "NewTitle", "NewToolTip", "LayoutUpdated"} <= {name for name, _ in host.signals}
        assert dict((label, on) for _, label, on in host.labels())["Resume"]

        host.click("Resume")
        wait_for(lambda: tray.daemon.state.status == "watching", what="the daemon to resume")
        wait_for(lambda: _icon_colour(host) == COLOURS["watching"], what="the green icon again")

        host.click("Quit")
        gui.join(10)
        loop.join(10)
        assert not gui.is_alive() and not loop.is_alive()
        assert tray.daemon.state.status == "stopped"
    finally:
        if host is not None:
            host.close()
        _stop_tray(tray, loop, gui)


@pytest.mark.skipif(sys.platform != "linux", reason="the StatusNotifierItem backend is the Linux one")
def test_sni_waits_for_a_host_that_starts_later(session_bus, xdisplay, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)  # xdisplay hid it
    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    loop, gui = _start_tray(tray)
    try:
        assert "no tray host on this desktop yet" in caplog.text
        watcher = Watcher()  # the panel starts after us, as at login
        try:
            # {}: the item may register twice when the host appears while it starts (signal and first try both see it)
            wait_for(lambda: set(watcher.items) == {tray.icon.bus_name}, what="the item to register with the late host")
        finally:
            watcher.close()
    finally:
        _stop_tray(tray, loop, gui)
    assert "Traceback" not in caplog.text


@pytest.mark.skipif(sys.platform != "linux", reason="only the Linux backends look for a tray host")
def test_no_tray_host_is_one_clear_line(xdisplay, tmp_path, caplog):
    """A display with no tray of either kind and no session bus: a TrayError naming both, before pystray runs."""
    tray = TrayApp(make_daemon(tmp_path), lambda: None, tmp_path / "g", tmp_path / "log.jsonl")
    with pytest.raises(TrayError) as caught:
        tray.build_icon(choose_backend())
    assert str(caught.value) == (
        "cannot show a tray icon: this desktop has no tray host (no StatusNotifierWatcher; no session bus "
        "(DBUS_SESSION_BUS_ADDRESS is not set, no $XDG_RUNTIME_DIR/bus); no X11 system tray). Start a panel with a "
        "tray, or watch without an icon with `facewatch run`.")
    assert tray.icon is None and "Failed to dock" not in caplog.text
