"""Real desktop parts for tests: a private Xvfb, a private session dbus-daemon, an XFCE panel, input via XTest.

Each start_* function skips the calling test with the package to install when its program is missing, and
returns the running process; the caller stops it with stop().
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

# An XFCE panel along the top edge holding only the notification area ("systray": it hosts StatusNotifierItems
# and is the org.kde.StatusNotifierWatcher), written where xfconfd looks when XDG_CONFIG_HOME points at `root`.
PANEL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="32"/>
      <property name="plugin-ids" type="array"><value type="int" value="1"/></property>
    </property>
  </property>
  <property name="plugins" type="empty"><property name="plugin-1" type="string" value="systray"/></property>
</channel>
"""


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll until condition() is truthy and return its value; fail naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def need_program(name: str, package: str, why: str) -> str:
    """The program's path, or skip the test naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian/Ubuntu: apt-get install {package}); {why}")
    return path


def _read_line(proc: subprocess.Popen, fd: int, what: str, timeout: float = 10.0) -> str:
    """The first line a starting server writes to fd (it may come in pieces), or fail naming the server."""
    deadline, data = time.monotonic() + timeout, b""
    while b"\n" not in data and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    if b"\n" not in data:
        stop(proc)
        pytest.fail(f"{what} did not start within {timeout:.0f} s")
    return data.decode().splitlines()[0].strip()


def start_xvfb(size: str = "320x240x24") -> tuple[subprocess.Popen, str]:
    """A private Xvfb on a display it picks itself (-displayfd); returns (process, ":N")."""
    xvfb = need_program("Xvfb", "xvfb", "the tray tests need an X server")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", size, "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    proc.keep_open = read_end  # closed by stop(): Xvfb may still write the newline, and a closed pipe kills it
    return proc, ":" + _read_line(proc, read_end, "Xvfb")


def start_session_bus() -> tuple[subprocess.Popen, str]:
    """A private session dbus-daemon (it starts services such as xfconfd on demand, with this process's
    environment); returns (process, address)."""
    exe = need_program("dbus-daemon", "dbus-daemon", "the tray menu protocol needs a session bus")
    proc = subprocess.Popen([exe, "--session", "--nofork", "--nopidfile", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc, _read_line(proc, proc.stdout.fileno(), "dbus-daemon")


def start_xfce_panel(root: Path) -> subprocess.Popen:
    """xfce4-panel with PANEL_XML as its config; XDG_CONFIG_HOME must already point at `root` (see PANEL_XML)."""
    exe = need_program("xfce4-panel", "xfce4-panel", "it is the StatusNotifierItem host these tests use")
    channel = root / "xfce4" / "xfconf" / "xfce-perchannel-xml"
    channel.mkdir(parents=True, exist_ok=True)
    (channel / "xfce4-panel.xml").write_text(PANEL_XML)
    # --disable-wm-check: Xvfb has no window manager, and the panel would wait for one first
    return subprocess.Popen([exe, "--disable-wm-check"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a started process and reap it (kill when it ignores SIGTERM)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if hasattr(proc, "keep_open"):
        os.close(proc.keep_open)


class XInput:
    """Clicks, key presses and screenshots on the current DISPLAY, through the XTEST extension."""

    def __init__(self) -> None:
        import Xlib.display

        self.display = Xlib.display.Display()

    def click(self, x: int, y: int, button: int = 1) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self.display, X.MotionNotify, x=x, y=y)
        xtest.fake_input(self.display, X.ButtonPress, button)
        xtest.fake_input(self.display, X.ButtonRelease, button)
        self.display.sync()

    def key(self, name: str) -> None:
        from Xlib import XK, X
        from Xlib.ext import xtest

        code = self.display.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(self.display, X.KeyPress, code)
        xtest.fake_input(self.display, X.KeyRelease, code)
        self.display.sync()

    def screenshot(self):
        """The whole screen as a PIL RGB image."""
        from PIL import Image
        from Xlib import X

        root = self.display.screen().root
        size = root.get_geometry()
        data = root.get_image(0, 0, size.width, size.height, X.ZPixmap, 0xFFFFFFFF).data
        return Image.frombytes("RGB", (size.width, size.height), data, "raw", "BGRX")

    def close(self) -> None:
        self.display.close()
