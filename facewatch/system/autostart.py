"""Start the facewatch tray at login: XDG autostart or a systemd user unit (Linux/BSD), HKCU Run key (Windows),
LaunchAgent (macOS).

Rules:
1. Each backend only ever touches its own entry (one file or one registry value named "facewatch"); writes are
   atomic and enabling twice leaves the same single entry.
2. The entry carries what this shell's facewatch runs with: --config when one was given, and the facewatch
   variables FACEWATCH_MODEL_DIR / FACEWATCH_CONFIG (`env` in the .desktop Exec, Environment= in the unit,
   EnvironmentVariables in the LaunchAgent; the Windows Run value cannot carry variables, so it refuses).
3. The files facewatch writes are marked (X-Facewatch-Managed=true); enable never replaces, and disable never
   deletes, a facewatch.desktop or facewatch.service the user made by hand.
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

CARRIED_ENV = ("FACEWATCH_MODEL_DIR", "FACEWATCH_CONFIG")  # rule 2
MARKER = "X-Facewatch-Managed=true"  # rule 3
# What facewatch wrote before the marker existed: recognised as its own by this line.
LEGACY_COMMENT = "Comment=Locks the screen when a stranger sits at the keyboard"
ICON = "security-high"  # a freedesktop icon-theme name every desktop theme draws
SYSTEMD_UNIT = f"{APP}.service"
SYSTEMD_TARGET = "graphical-session.target"

DESKTOP_FILE = f"{APP}.desktop"
LAUNCH_AGENT_LABEL = "io.github.facewatch.tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"

# Desktop Entry spec: an Exec argument holding any of these must be double-quoted.
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class AutostartError(ValueError):
    """An entry that cannot be written as asked; the message says why and what to do instead."""


class Autostart(Protocol):
    """One OS's login-start entry for facewatch."""

    def enable(self, command: Sequence[str], env: Mapping[str, str] = {}) -> PurePath:
        """Create or replace our entry so `command` runs at login with `env` set; return where it lives."""
        ...

    def disable(self) -> bool:
        """Remove our entry; True if there was one."""
        ...

    def status(self) -> str:
        """One line: enabled (where, what it runs) or disabled."""
        ...


def default_command(executable: str = sys.executable, platform: str = sys.platform,
                    config: Path | None = None) -> list[str]:
    """`<python> -m facewatch [--config FILE] tray`; on Windows pythonw.exe when present, so no console opens."""
    if platform == "win32" and Path(executable).name.lower() == "python.exe":
        windowless = Path(executable).with_name("pythonw.exe")
        if windowless.exists():
            executable = str(windowless)
    chosen = ["--config", str(Path(config).expanduser().absolute())] if config is not None else []
    return [executable, "-m", APP, *chosen, "tray"]


def carried_env(env: Mapping[str, str]) -> dict[str, str]:
    """The facewatch variables set here that the login entry must set too (rule 2)."""
    return {name: env[name] for name in CARRIED_ENV if env.get(name)}


def quote_exec_arg(arg: str) -> str:
    """Quote one Exec argument for a .desktop file: spec quoting, %% for %, then string-value escapes."""
    if arg == "" or any(ch in _EXEC_RESERVED for ch in arg):
        inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
        arg = f'"{inner}"'
    arg = arg.replace("%", "%%")
    # Exec is a "string" value, whose own escapes are undone before the quoting: so each backslash doubles
    # again, and newline/tab/CR take their escaped forms.
    return arg.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def _string_value(text: str) -> str:
    """A Desktop Entry string value: backslash, newline, tab and CR escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def desktop_entry(command: Sequence[str], env: Mapping[str, str] = {}) -> str:
    """The .desktop file that starts `command` (with `env` set through env(1)) at login in XDG desktops."""
    exec_args = (["env", *(f"{k}={v}" for k, v in env.items())] if env else []) + list(command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=facewatch\n"
        f"{LEGACY_COMMENT}\n"
        f"Exec={' '.join(quote_exec_arg(arg) for arg in exec_args)}\n"
        f"TryExec={_string_value(command[0])}\n"
        f"Icon={ICON}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
        f"{MARKER}\n"
    )


def quote_systemd_arg(arg: str) -> str:
    """Quote one ExecStart argument: double quotes with C escapes where needed; % and $ doubled so systemd
    expands neither specifiers nor variables in it."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg == "" or any(ch in arg for ch in ' \t\n"\'\\;'):
        escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return arg


def systemd_unit(command: Sequence[str], env: Mapping[str, str] = {}) -> str:
    """A user unit that runs `command` in the graphical session and restarts it if it fails."""
    environment = "".join(f"Environment={quote_systemd_arg(f'{k}={v}')}\n" for k, v in env.items())
    return (
        "[Unit]\n"
        "Description=facewatch: locks the screen when a stranger sits at the keyboard\n"
        f"PartOf={SYSTEMD_TARGET}\n"
        f"After={SYSTEMD_TARGET}\n"
        f"{MARKER}\n"
        "\n"
        "[Service]\n"
        f"ExecStart={' '.join(quote_systemd_arg(arg) for arg in command)}\n"
        f"{environment}"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        f"WantedBy={SYSTEMD_TARGET}\n"
    )


class _FileAutostart:
    """A login entry that is one file of ours: enable writes it atomically, disable deletes only it (rule 3)."""

    path: Path
    marked = True  # the file carries MARKER (the LaunchAgent's own label is its mark)

    def content(self, command: Sequence[str], env: Mapping[str, str]) -> bytes:
        """The file's bytes for `command` run with `env`."""
        raise NotImplementedError

    def ours(self) -> bool:
        """Whether the file there was written by facewatch (marked, or a pre-marker facewatch entry)."""
        if not self.marked:
            return True
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return False
        return MARKER in lines or LEGACY_COMMENT in lines

    def enable(self, command: Sequence[str], env: Mapping[str, str] = {}) -> PurePath:
        """Write our file (replacing an older one of ours); it takes effect at the next login."""
        if self.path.exists() and not self.ours():
            raise AutostartError(f"{self.path} was not written by facewatch: left as it is (move it away to let "
                                 "facewatch write its own)")
        write_private(self.path, self.content(command, env))
        return self.path

    def disable(self) -> bool:
        """Delete our file only; True if it existed and was ours."""
        if not self.path.exists() or not self.ours():
            return False
        self.path.unlink()
        return True

    def foreign(self) -> str | None:
        """The status line for a file of that name the user made, or None."""
        if self.path.exists() and not self.ours():
            return f"not managed by facewatch: {self.path} is the user's own (facewatch leaves it alone)"
        return None

    def status(self) -> str:
        """Disabled (no file), the user's own file, or what our file says (described())."""
        if not self.path.exists():
            return f"disabled (no {self.path})"
        return self.foreign() or self.described()

    def described(self) -> str:
        """The status line of our file, which exists."""
        raise NotImplementedError


class XdgAutostart(_FileAutostart):
    """Linux/BSD: $XDG_CONFIG_HOME/autostart/facewatch.desktop (default ~/.config/autostart)."""

    def __init__(self, home: Path, env: Mapping[str, str]) -> None:
        config_home = env.get("XDG_CONFIG_HOME", "")
        # The XDG base-dir spec says a relative value is invalid and must be ignored.
        base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
        self.path = base / "autostart" / DESKTOP_FILE

    def content(self, command: Sequence[str], env: Mapping[str, str]) -> bytes:
        """The Desktop Entry that runs `command`."""
        return desktop_entry(command, env).encode("utf-8")

    def described(self) -> str:
        """Enabled with its Exec line, or switched off in the desktop's startup settings."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if "Hidden=true" in lines or "X-GNOME-Autostart-enabled=false" in lines:
            return f"disabled in the desktop's startup settings ({self.path}); `enable` turns it back on"
        exec_line = next((line for line in lines if line.startswith("Exec=")), "Exec= missing")
        return f"enabled: {self.path} ({exec_line})"


class LaunchAgentAutostart(_FileAutostart):
    """macOS: ~/Library/LaunchAgents/<label>.plist, loaded by launchd at the next login."""

    marked = False

    def __init__(self, home: Path) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def content(self, command: Sequence[str], env: Mapping[str, str]) -> bytes:
        """The LaunchAgent: run `command` once at login, in GUI (Aqua) sessions only, as the tray needs one."""
        agent: dict[str, Any] = {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "LimitLoadToSessionType": "Aqua",
        }
        if env:
            agent["EnvironmentVariables"] = dict(env)
        return plistlib.dumps(agent, sort_keys=True)


    def described(self) -> str:
        """Enabled with the command it runs, or broken."""
        try:
            args = plistlib.loads(self.path.read_bytes()).get("ProgramArguments", [])
        except plistlib.InvalidFileException as exc:
            return f"broken: {self.path} is not a valid plist ({exc}); run `facewatch autostart enable`"
        return f"enabled: {self.path} (runs {subprocess.list2cmdline(args)})"


class SystemdAutostart(_FileAutostart):
    """Linux: a systemd user unit in $XDG_CONFIG_HOME/systemd/user, wanted by graphical-session.target (started
    by GNOME, KDE Plasma and other systemd-managed sessions), restarted when it fails."""

    def __init__(self, home: Path, env: Mapping[str, str]) -> None:
        config_home = env.get("XDG_CONFIG_HOME", "")
        base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
        self.path = base / "systemd" / "user" / SYSTEMD_UNIT
        self.wants = self.path.parent / f"{SYSTEMD_TARGET}.wants" / SYSTEMD_UNIT

    def content(self, command: Sequence[str], env: Mapping[str, str]) -> bytes:
        """The unit file."""
        return systemd_unit(command, env).encode("utf-8")

    def enable(self, command: Sequence[str], env: Mapping[str, str] = {}) -> PurePath:
        """Write the unit and link it into the target's wants, as `systemctl --user enable` does."""
        super().enable(command, env)
        self.wants.parent.mkdir(parents=True, exist_ok=True)
        if not self.wants.is_symlink():
            self.wants.symlink_to(Path("..") / SYSTEMD_UNIT)
        return self.path

    def disable(self) -> bool:
        """Unlink the wants link (ours only: it points at our unit) and delete our unit."""
        if self.wants.is_symlink() and os.readlink(self.wants) == str(Path("..") / SYSTEMD_UNIT) and self.ours():
            self.wants.unlink()
        return super().disable()

    def described(self) -> str:
        """Enabled (linked into the target) with its ExecStart, or written but not enabled."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        exec_line = next((line for line in lines if line.startswith("ExecStart=")), "ExecStart= missing")
        if not self.wants.is_symlink():
            return f"written but not enabled: {self.path}; `facewatch autostart enable --systemd` links it"
        return f"enabled: {self.path}, at {SYSTEMD_TARGET} ({exec_line})"


class RunKeyAutostart:
    """Windows: the value "facewatch" under HKEY_CURRENT_USER\\...\\Run; `registry` is winreg or a test fake."""

    def __init__(self, registry: Any) -> None:
        self._reg = registry
        self.location = PureWindowsPath("HKEY_CURRENT_USER", RUN_KEY, APP)

    def enable(self, command: Sequence[str], env: Mapping[str, str] = {}) -> PurePath:
        """Set our Run value to the command line (Windows quoting); other values are left alone."""
        if env:
            raise AutostartError(f"a Windows Run entry cannot set {', '.join(env)}: put model_dir in your config "
                                 "file instead (`facewatch config --path` prints where)")
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
    systemd: bool = False,
) -> Autostart:
    """The login-start backend of `platform` (`systemd`: the user unit, Linux only); `home`, `env` and `registry`
    (winreg) are injectable for tests."""
    if systemd:
        if not platform.startswith("linux"):
            raise AutostartError(f"--systemd is for Linux; on {platform} facewatch uses the OS's own login start")
        return SystemdAutostart(Path.home() if home is None else home, env)
    if platform == "win32":
        if registry is None:
            import winreg

            registry = winreg
        return RunKeyAutostart(registry)
    home = Path.home() if home is None else home
    if platform == "darwin":
        return LaunchAgentAutostart(home)
    return XdgAutostart(home, env)


def enable(command: Sequence[str] | None = None, backend: Autostart | None = None, config: Path | None = None,
           env: Mapping[str, str] = os.environ) -> PurePath:
    """Start `command` (default: this Python's `-m facewatch [--config FILE] tray`) at login, with the facewatch
    variables of `env` (rule 2); return where the entry is."""
    backend = backend or for_platform()
    return backend.enable(list(command) if command else default_command(config=config), carried_env(env))


def disable(backend: Autostart | None = None) -> bool:
    """Stop starting facewatch at login; True if an entry was removed."""
    return (backend or for_platform()).disable()


def status(backend: Autostart | None = None) -> str:
    """One line saying whether facewatch starts at login, and how."""
    return (backend or for_platform()).status()
