"""Start the facewatch tray at login: XDG autostart (Linux/BSD), HKCU Run key (Windows), LaunchAgent (macOS).

Each backend only ever touches its own entry (one file or one registry value named "facewatch"); writes are
atomic and enabling twice leaves the same single entry.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Mapping, Protocol, Sequence

from facewatch import APP
from facewatch.paths import write_private

DESKTOP_FILE = f"{APP}.desktop"
LAUNCH_AGENT_LABEL = "io.github.facewatch.ui.tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"

# Desktop Entry spec: an Exec argument holding any of these must be double-quoted.
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class Autostart(Protocol):
    """One OS's login-start entry for facewatch."""

    def enable(self, command: Sequence[str]) -> PurePath:
        """Create or replace our entry so `command` runs at login; return where the entry lives."""
        ...

    def disable(self) -> bool:
        """Remove our entry; True if there was one."""
        ...

    def status(self) -> str:
        """One line: enabled (where, what it runs) or disabled."""
        ...


def default_command(executable: str = sys.executable, platform: str = sys.platform) -> list[str]:
    """`<python> -m facewatch tray`; on Windows pythonw.exe when present, so no console window opens."""
    if platform == "win32" and Path(executable).name.lower() == "python.exe":
        windowless = Path(executable).with_name("pythonw.exe")
        if windowless.exists():
            executable = str(windowless)
    return [executable, "-m", APP, "tray"]


def quote_exec_arg(arg: str) -> str:
    """Quote one Exec argument for a .desktop file: spec quoting, %% for %, then string-value escapes."""
    if arg == "" or any(ch in _EXEC_RESERVED for ch in arg):
        inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
        arg = f'"{inner}"'
    arg = arg.replace("%", "%%")
    # Exec is a "string" value, whose own escapes are undone before the quoting: so each backslash doubles
    # again, and newline/tab/CR take their escaped forms.
    return arg.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def desktop_entry(command: Sequence[str]) -> str:
    """The .desktop file that starts `command` at login in XDG desktops (GNOME, KDE, XFCE, ...)."""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=facewatch\n"
        "Comment=Locks the screen when a stranger sits at the keyboard\n"
        f"Exec={' '.join(quote_exec_arg(arg) for arg in command)}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


class _FileAutostart:
    """A login entry that is one file of ours: enable writes it atomically, disable deletes only it."""

    path: Path

    def content(self, command: Sequence[str]) -> bytes:
        """The file's bytes for `command`."""
        raise NotImplementedError

    def enable(self, command: Sequence[str]) -> PurePath:
        """Write our file (replacing an older one of ours); it takes effect at the next login."""
        write_private(self.path, self.content(command))
        return self.path

    def disable(self) -> bool:
        """Delete our file only; True if it existed."""
        existed = self.path.exists()
        self.path.unlink(missing_ok=True)
        return existed


class XdgAutostart(_FileAutostart):
    """Linux/BSD: $XDG_CONFIG_HOME/autostart/facewatch.desktop (default ~/.config/autostart)."""

    def __init__(self, home: Path, env: Mapping[str, str]) -> None:
        config_home = env.get("XDG_CONFIG_HOME", "")
        # The XDG base-dir spec says a relative value is invalid and must be ignored.
        base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
        self.path = base / "autostart" / DESKTOP_FILE

    def content(self, command: Sequence[str]) -> bytes:
        """The Desktop Entry that runs `command`."""
        return desktop_entry(command).encode("utf-8")

    def status(self) -> str:
        """Enabled with its Exec line, disabled, or switched off in the desktop's startup settings."""
        if not self.path.exists():
            return f"disabled (no {self.path})"
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if "Hidden=true" in lines or "X-GNOME-Autostart-enabled=false" in lines:
            return f"disabled in the desktop's startup settings ({self.path}); `enable` turns it back on"
        exec_line = next((line for line in lines if line.startswith("Exec=")), "Exec= missing")
        return f"enabled: {self.path} ({exec_line})"


class LaunchAgentAutostart(_FileAutostart):
    """macOS: ~/Library/LaunchAgents/<label>.plist, loaded by launchd at the next login."""

    def __init__(self, home: Path) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def content(self, command: Sequence[str]) -> bytes:
        """The LaunchAgent: run `command` once at login, in GUI (Aqua) sessions only, as the tray needs one."""
        agent = {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "LimitLoadToSessionType": "Aqua",
        }
        return plistlib.dumps(agent, sort_keys=True)


    def status(self) -> str:
        """Enabled with the command it runs, or disabled."""
        if not self.path.exists():
            return f"disabled (no {self.path})"
        try:
            args = plistlib.loads(self.path.read_bytes()).get("ProgramArguments", [])
        except plistlib.InvalidFileException as exc:
            return f"broken: {self.path} is not a valid plist ({exc}); run `facewatch autostart enable`"
        return f"enabled: {self.path} (runs {subprocess.list2cmdline(args)})"


class RunKeyAutostart:
    """Windows: the value "facewatch" under HKEY_CURRENT_USER\\...\\Run; `registry` is winreg or a test fake."""

    def __init__(self, registry: Any) -> None:
        self._reg = registry
        self.location = PureWindowsPath("HKEY_CURRENT_USER", RUN_KEY, APP)

    def enable(self, command: Sequence[str]) -> PurePath:
        """Set our Run value to the command line (Windows quoting); other values are left alone."""
        reg = self._reg
        with reg.CreateKeyEx(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
            reg.SetValueEx(key, APP, 0, reg.REG_SZ, subprocess.list2cmdline(list(command)))
        return self.location

    def disable(self) -> bool:
        """Delete our Run value only; True if it existed."""
        reg = self._reg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
                reg.DeleteValue(key, APP)
        except FileNotFoundError:
            return False
        return True

    def status(self) -> str:
        """Enabled with the command line it runs, or disabled."""
        reg = self._reg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_QUERY_VALUE) as key:
                value, _kind = reg.QueryValueEx(key, APP)
        except FileNotFoundError:
            return f"disabled (no {self.location})"
        return f"enabled: {self.location} (runs {value})"


def for_platform(
    platform: str = sys.platform,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    registry: Any = None,
) -> Autostart:
    """The login-start backend of `platform`; `home`, `env` and `registry` (winreg) are injectable for tests."""
    if platform == "win32":
        if registry is None:
            import winreg

            registry = winreg
        return RunKeyAutostart(registry)
    home = Path.home() if home is None else home
    if platform == "darwin":
        return LaunchAgentAutostart(home)
    return XdgAutostart(home, env)


def enable(command: Sequence[str] | None = None, backend: Autostart | None = None) -> PurePath:
    """Start `command` (default: this Python's `-m facewatch tray`) at login; return where the entry is."""
    backend = backend or for_platform()
    return backend.enable(list(command) if command else default_command())


def disable(backend: Autostart | None = None) -> bool:
    """Stop starting facewatch at login; True if an entry was removed."""
    return (backend or for_platform()).disable()


def status(backend: Autostart | None = None) -> str:
    """One line saying whether facewatch starts at login, and how."""
    return (backend or for_platform()).status()
