"""Login start: the exact XDG .desktop file, macOS LaunchAgent plist and Windows Run value, in a temp home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path, PureWindowsPath

import pytest

from facewatch.system import autostart
from facewatch.system.autostart import (
    AutostartError,
    LaunchAgentAutostart,
    RunKeyAutostart,
    XdgAutostart,
    default_command,
    for_platform,
    quote_exec_arg,
)

COMMAND = ["/usr/bin/python3", "-m", "facewatch", "tray"]
DESKTOP = (
    "[Desktop Entry]\n"
    "Type=Application\n"
    "Name=facewatch\n"
    "Comment=Locks the screen when a stranger sits at the keyboard\n"
    "Exec=/usr/bin/python3 -m facewatch tray\n"
    "TryExec=/usr/bin/python3\n"
    "Icon=security-high\n"
    "Terminal=false\n"
    "X-GNOME-Autostart-enabled=true\n"
    "X-Facewatch-Managed=true\n"
)
PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>io.github.facewatch.tray</string>
	<key>LimitLoadToSessionType</key>
	<string>Aqua</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/bin/python3</string>
		<string>-m</string>
		<string>facewatch</string>
		<string>tray</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
"""


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ---- Linux / XDG ---------------------------------------------------------------------------------


def test_xdg_enable_writes_the_exact_desktop_entry_idempotently_and_leaves_others_alone(tmp_path):
    backend = for_platform(platform="linux", home=tmp_path, env={})
    folder = tmp_path / ".config" / "autostart"
    folder.mkdir(parents=True)
    other = folder / "other-app.desktop"
    other.write_text("[Desktop Entry]\nExec=other\n")

    assert autostart.status(backend) == f"disabled (no {folder / 'facewatch.desktop'})"
    first = autostart.enable(COMMAND, backend)
    assert first == folder / "facewatch.desktop"
    assert first.read_text() == DESKTOP
    assert autostart.enable(COMMAND, backend) == first  # enabling twice: same single file
    assert first.read_text() == DESKTOP
    assert sorted(p.name for p in folder.iterdir()) == ["facewatch.desktop", "other-app.desktop"]
    if os.name == "posix":
        assert mode(first) == 0o600
    assert autostart.status(backend) == f"enabled: {first} (Exec=/usr/bin/python3 -m facewatch tray)"

    assert autostart.disable(backend) is True
    assert autostart.disable(backend) is False
    assert sorted(p.name for p in folder.iterdir()) == ["other-app.desktop"]
    assert other.read_text() == "[Desktop Entry]\nExec=other\n"


def test_xdg_respects_an_absolute_xdg_config_home_and_ignores_a_relative_one(tmp_path):
    custom = tmp_path / "cfg"
    assert for_platform(platform="linux", home=tmp_path, env={"XDG_CONFIG_HOME": str(custom)}).path == (
        custom / "autostart" / "facewatch.desktop"
    )
    assert for_platform(platform="linux", home=tmp_path, env={"XDG_CONFIG_HOME": "cfg"}).path == (
        tmp_path / ".config" / "autostart" / "facewatch.desktop"
    )
    assert isinstance(for_platform(platform="freebsd13", home=tmp_path, env={}), XdgAutostart)


def test_exec_arguments_are_quoted_per_the_desktop_entry_spec(tmp_path):
    assert quote_exec_arg("/usr/bin/python3") == "/usr/bin/python3"
    assert quote_exec_arg("--x=1") == "--x=1"
    assert quote_exec_arg("") == '""'
    assert quote_exec_arg("/opt/my apps/py") == '"/opt/my apps/py"'
    # reserved characters quote the argument; inside quotes " ` $ \ get a backslash; % becomes %%;
    # then the string-value level doubles every backslash (so a literal backslash takes four).
    assert quote_exec_arg('print("$HOME 100%")') == '"print(\\\\"\\\\$HOME 100%%\\\\")"'
    assert quote_exec_arg("a\\b") == '"a\\\\\\\\b"'
    assert quote_exec_arg("50%") == "50%%"

    backend = XdgAutostart(tmp_path, {})
    backend.enable(["/opt/my apps/py", "-m", "facewatch", "tray"])
    assert 'Exec="/opt/my apps/py" -m facewatch tray\n' in backend.path.read_text()


def test_xdg_status_reports_an_entry_switched_off_by_the_desktop(tmp_path):
    backend = XdgAutostart(tmp_path, {})
    backend.enable(COMMAND)
    backend.path.write_text(DESKTOP.replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert backend.status() == (
        f"disabled in the desktop's startup settings ({backend.path}); `enable` turns it back on"
    )
    backend.enable(COMMAND)
    assert backend.path.read_text() == DESKTOP


def test_enable_carries_the_config_and_the_model_dir_into_the_entry(tmp_path):
    backend = XdgAutostart(tmp_path, {})
    env = {"FACEWATCH_MODEL_DIR": "/opt/fw models", "HOME": "/home/me", "FACEWATCH_CONFIG": ""}
    autostart.enable(backend=backend, config=Path("/etc/fw/config.yaml"), env=env)
    lines = backend.path.read_text().splitlines()
    assert f"Exec=env \"FACEWATCH_MODEL_DIR=/opt/fw models\" {quote_exec_arg(sys.executable)} -m facewatch " \
           "--config /etc/fw/config.yaml tray" in lines
    assert f"TryExec={sys.executable}" in lines


def test_disable_and_enable_leave_a_hand_made_entry_alone(tmp_path):
    backend = XdgAutostart(tmp_path, {})
    backend.path.parent.mkdir(parents=True)
    mine = "[Desktop Entry]\nType=Application\nName=my facewatch\nExec=/home/me/bin/facewatch-wrapper\n"
    backend.path.write_text(mine)
    assert autostart.disable(backend) is False and backend.path.read_text() == mine
    assert autostart.status(backend).startswith("not managed by facewatch:")
    with pytest.raises(AutostartError, match="was not written by facewatch"):
        autostart.enable(COMMAND, backend)
    assert backend.path.read_text() == mine
    # An entry an older facewatch wrote (no marker yet) is still recognised as ours.
    backend.path.write_text(DESKTOP.replace("X-Facewatch-Managed=true\n", ""))
    assert autostart.disable(backend) is True and not backend.path.exists()


def test_systemd_user_unit_bound_to_the_graphical_session(tmp_path):
    backend = for_platform(platform="linux", home=tmp_path, env={}, systemd=True)
    unit = tmp_path / ".config" / "systemd" / "user" / "facewatch.service"
    wants = unit.parent / "graphical-session.target.wants" / "facewatch.service"
    assert autostart.enable(COMMAND, backend, env={"FACEWATCH_MODEL_DIR": "/m$x 100%"}) == unit
    assert unit.read_text() == (
        "[Unit]\n"
        "Description=facewatch: locks the screen when a stranger sits at the keyboard\n"
        "PartOf=graphical-session.target\n"
        "After=graphical-session.target\n"
        "X-Facewatch-Managed=true\n"
        "\n"
        "[Service]\n"
        "ExecStart=/usr/bin/python3 -m facewatch tray\n"
        'Environment="FACEWATCH_MODEL_DIR=/m$$x 100%%"\n'
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=graphical-session.target\n"
    )
    assert os.readlink(wants) == "../facewatch.service" and wants.resolve() == unit.resolve()
    assert autostart.status(backend).startswith(f"enabled: {unit}, at graphical-session.target")
    autostart.enable(COMMAND, backend)  # twice: one unit, one link
    assert autostart.disable(backend) is True
    assert not unit.exists() and not wants.is_symlink()
    with pytest.raises(AutostartError, match="--systemd is for Linux"):
        for_platform(platform="darwin", home=tmp_path, env={}, systemd=True)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_reads_the_unit_without_complaint(tmp_path):
    backend = for_platform(platform="linux", home=tmp_path, env={}, systemd=True)
    unit = autostart.enable([sys.executable, "-m", "facewatch", "tray"], backend,
                            env={"FACEWATCH_MODEL_DIR": "/opt/fw models"})
    # System mode: the user mode needs a running user manager; the unit syntax checks are the same.
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr


def test_windows_refuses_variables_it_cannot_carry():
    with pytest.raises(AutostartError, match="cannot set FACEWATCH_MODEL_DIR"):
        RunKeyAutostart(registry=None).enable(COMMAND, {"FACEWATCH_MODEL_DIR": "C:\\models"})


# ---- macOS ---------------------------------------------------------------------------------------


def test_launch_agent_plist_is_exact_idempotent_and_removed_alone(tmp_path):
    backend = for_platform(platform="darwin", home=tmp_path, env={})
    assert isinstance(backend, LaunchAgentAutostart)
    agents = tmp_path / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    (agents / "com.example.other.plist").write_bytes(b"other")

    path = backend.enable(COMMAND)
    assert path == agents / "io.github.facewatch.tray.plist"
    assert path.read_text() == PLIST
    backend.enable(COMMAND)
    assert path.read_text() == PLIST
    assert sorted(p.name for p in agents.iterdir()) == [
        "com.example.other.plist", "io.github.facewatch.tray.plist"
    ]
    assert backend.status() == f"enabled: {path} (runs /usr/bin/python3 -m facewatch tray)"

    assert backend.disable() is True
    assert backend.disable() is False
    assert backend.status() == f"disabled (no {path})"
    assert sorted(p.name for p in agents.iterdir()) == ["com.example.other.plist"]


def test_launch_agent_status_names_a_broken_plist(tmp_path):
    backend = LaunchAgentAutostart(tmp_path)
    backend.enable(COMMAND)
    backend.path.write_bytes(b"not a plist")
    assert backend.status().startswith(f"broken: {backend.path} is not a valid plist (")


# ---- Windows -------------------------------------------------------------------------------------


class FakeKey:
    def __init__(self, values):
        self.values = values

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeWinreg:
    """The slice of winreg the Run-key backend uses, over a dict of keys -> {value name: (data, type)}."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_SET_VALUE = 2
    KEY_QUERY_VALUE = 1
    REG_SZ = 1

    def __init__(self):
        self.keys = {}

    def CreateKeyEx(self, hive, sub_key, reserved, access):  # noqa: N802 - winreg's names
        return FakeKey(self.keys.setdefault((hive, sub_key), {}))

    def OpenKey(self, hive, sub_key, reserved, access):  # noqa: N802
        if (hive, sub_key) not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return FakeKey(self.keys[(hive, sub_key)])

    def SetValueEx(self, key, name, reserved, kind, data):  # noqa: N802
        key.values[name] = (data, kind)

    def QueryValueEx(self, key, name):  # noqa: N802
        if name not in key.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return key.values[name]

    def DeleteValue(self, key, name):  # noqa: N802
        if name not in key.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        del key.values[name]


def test_windows_run_value_is_set_once_and_removed_alone():
    reg = FakeWinreg()
    run_key = ("HKCU", r"Software\Microsoft\Windows\CurrentVersion\Run")
    location = PureWindowsPath(r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\facewatch")
    backend = for_platform(platform="win32", registry=reg)
    assert isinstance(backend, RunKeyAutostart)
    assert backend.status() == f"disabled (no {location})"  # the Run key does not even exist yet
    assert backend.disable() is False

    reg.keys[run_key] = {"OneDrive": ('"C:\\OneDrive.exe" /background', 1)}
    command = [r"C:\Program Files\Python311\pythonw.exe", "-m", "facewatch", "tray"]
    assert backend.enable(command) == location
    assert backend.enable(command) == location
    expected_line = r'"C:\Program Files\Python311\pythonw.exe" -m facewatch tray'
    assert reg.keys[run_key] == {
        "OneDrive": ('"C:\\OneDrive.exe" /background', 1),
        "facewatch": (expected_line, 1),
    }
    assert backend.status() == f"enabled: {location} (runs {expected_line})"

    assert backend.disable() is True
    assert backend.disable() is False
    assert reg.keys[run_key] == {"OneDrive": ('"C:\\OneDrive.exe" /background', 1)}
    assert backend.status() == f"disabled (no {location})"


# ---- the default command -------------------------------------------------------------------------


def test_default_command_runs_this_python_and_prefers_pythonw_on_windows(tmp_path):
    assert default_command("/usr/bin/python3", "linux") == ["/usr/bin/python3", "-m", "facewatch", "tray"]
    python = tmp_path / "python.exe"
    python.touch()
    assert default_command(str(python), "win32") == [str(python), "-m", "facewatch", "tray"]
    (tmp_path / "pythonw.exe").touch()
    assert default_command(str(python), "win32") == [str(tmp_path / "pythonw.exe"), "-m", "facewatch", "tray"]


def test_enable_without_a_command_starts_this_pythons_tray(tmp_path):
    backend = XdgAutostart(tmp_path, {})
    autostart.enable(backend=backend)
    exec_line = next(line for line in backend.path.read_text().splitlines() if line.startswith("Exec="))
    expected = [sys.executable, "-m", "facewatch", "tray"]
    assert exec_line == "Exec=" + " ".join(quote_exec_arg(arg) for arg in expected)


@pytest.mark.skipif(shutil.which("gio") is None, reason="GLib's gio launcher is not installed")
def test_glib_launches_the_written_entry_with_the_exact_arguments(tmp_path):
    """GLib (what GNOME's autostart uses) undoes our quoting back to the very same argv."""
    script = tmp_path / "my dir" / "echo args.py"
    script.parent.mkdir()
    out = tmp_path / "argv.json"
    script.write_text(  # write then rename, so the test never reads a half-written file
        "import json, os, sys\n"
        f"json.dump(sys.argv[1:], open({str(out)!r} + '.tmp', 'w'))\n"
        f"os.replace({str(out)!r} + '.tmp', {str(out)!r})\n"
    )
    args = ['print("$HOME 100%")', "a\\b", "", "it's `x` #1 ~ & ; | < > * ? ( )", "50%", "tab\there"]
    backend = XdgAutostart(tmp_path, {})
    backend.enable([sys.executable, str(script), *args])
    subprocess.run(["gio", "launch", str(backend.path)], check=True, timeout=30, capture_output=True)
    deadline = time.monotonic() + 30
    while not out.exists():
        assert time.monotonic() < deadline, "the launched entry never wrote its arguments"
        time.sleep(0.05)
    assert json.loads(out.read_text()) == args
