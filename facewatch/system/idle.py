"""How long keyboard and mouse have been idle, for policy.camera_in_use "lock_if_idle".

X11 only: XScreenSaverQueryInfo from libXss through ctypes (the call xprintidle makes; no extra package).
Under Wayland, on Windows or macOS, or without libXss the idle time is unknown (None) and the policy treats
"lock_if_idle" as "notify", so nobody is locked out on a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Callable, Mapping

log = logging.getLogger("facewatch.idle")

IdleProbe = Callable[[], "float | None"]


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [("window", ctypes.c_ulong), ("state", ctypes.c_int), ("kind", ctypes.c_int),
                ("til_or_since", ctypes.c_ulong), ("idle", ctypes.c_ulong), ("eventMask", ctypes.c_ulong)]


class X11Idle:
    """Seconds since the last input event on the X display named by DISPLAY; the connection is kept open."""

    def __init__(self, display: str) -> None:
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        xss = ctypes.CDLL(ctypes.util.find_library("Xss") or "libXss.so.1")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo)]
        self._display = x11.XOpenDisplay(display.encode())
        if not self._display:
            raise OSError(f"cannot open X display {display}")
        self._root = x11.XDefaultRootWindow(self._display)
        self._info = xss.XScreenSaverAllocInfo()
        self._query = xss.XScreenSaverQueryInfo

    def __call__(self) -> float | None:
        """Idle seconds, or None when the X server has no MIT-SCREEN-SAVER extension."""
        if not self._query(self._display, self._root, self._info):
            return None
        return self._info.contents.idle / 1000.0


def find_idle_probe(platform: str = sys.platform, env: Mapping[str, str] = os.environ) -> IdleProbe:
    """The idle probe of this session: X11's where DISPLAY is set and libXss loads, else one that says None."""
    display = env.get("DISPLAY")
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and display and not env.get("WAYLAND_DISPLAY"):
        try:
            return X11Idle(display)
        except OSError as exc:
            log.info("input idle time unknown (%s); camera_in_use lock_if_idle will only notify", exc)
    return lambda: None


def describe_idle(probe: IdleProbe) -> str:
    """For doctor: how the idle time is read, or that it is not."""
    if isinstance(probe, X11Idle):
        return "X11 XScreenSaverQueryInfo (libXss)"
    return "unknown here (needs X11 and libXss): policy.camera_in_use lock_if_idle only notifies"
