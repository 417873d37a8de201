"""The real parts the lock and camera tests drive: an X server, a real xscreensaver, a stand-in camera node.

Each start skips its test with the reason when the tool is absent; scripts/test.sh installs them as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facewatch.detectors.base import Detection, Face
from facewatch.identity.matching import Match
from facewatch.identity.pipeline import Identified
from helpers.desktop import wait_for


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """An Xvfb on the first free display from :90 (a fixed number, so no -displayfd pipe must be kept open
    for the server's life: Xvfb dies writing to a closed one); returns (process, DISPLAY)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb)")
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X{n}-lock").exists()
                  and not Path(f"/tmp/.X11-unix/X{n}").exists())
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or server.poll() is not None, 10.0, "Xvfb")
    if server.poll() is not None:
        pytest.fail(f"Xvfb :{number} exited with status {server.returncode}")
    return server, f":{number}"


@dataclass
class XScreenSaver:
    """A running xscreensaver daemon on `display`; restart() brings up a fresh, unlocked one (there is no
    password to type: killing the locker is how a test unlocks)."""

    display: str
    home: Path
    process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "PATH": os.environ.get("PATH", "")}

    def time(self) -> str:
        """What `xscreensaver-command -time` says now."""
        out = subprocess.run(["xscreensaver-command", "-time"], env=self.env, capture_output=True, text=True,
                             check=False)
        return (out.stdout or out.stderr).strip()

    def start(self) -> XScreenSaver:
        """Start xscreensaver (as nobody when we are root: it refuses to lock for root) and wait for it."""
        command = ["xscreensaver", "-no-splash"]
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.home, nobody.pw_uid, nobody.pw_gid)
            command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *command]
        self.process = subprocess.Popen(command, env={**self.env, "HOME": str(self.home)}, cwd=self.home,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: "since" in self.time() or self.process.poll() is not None, 10.0, "xscreensaver")
        if self.process.poll() is not None:
            pytest.fail(f"xscreensaver exited with status {self.process.returncode}")
        return self

    def stop(self) -> None:
        """Stop xscreensaver and its helpers (one process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_xscreensaver(display: str, home: Path) -> XScreenSaver:
    """A real xscreensaver on `display`, or a skip naming what is missing."""
    missing = [tool for tool in ("xscreensaver", "xscreensaver-command") if shutil.which(tool) is None]
    if os.getuid() == 0 and shutil.which("setpriv") is None:
        missing.append("setpriv (util-linux), to run it as an unprivileged user")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian/Ubuntu: apt-get install xscreensaver)")
    home.mkdir(exist_ok=True)
    return XScreenSaver(display, home).start()


class NodeCapture:
    """A cv2.VideoCapture stand-in that holds a real descriptor on a stand-in camera node while open."""

    def __init__(self, node: Path, log: list) -> None:
        self.fd: int | None = os.open(node, os.O_RDONLY)
        self.log = log
        log.append(("open", time.monotonic()))

    def isOpened(self) -> bool:
        return self.fd is not None

    def grab(self) -> bool:
        time.sleep(0.02)
        return self.fd is not None

    def retrieve(self):
        return True, np.zeros((48, 64, 3), np.uint8)

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.log.append(("close", time.monotonic()))


class OnePerson:
    """A person detector that always sees one person."""

    def detect(self, frame):
        return [Detection(np.array([0, 0, 40, 40], np.float32), 0.9)]


class StrangerFaces:
    """A face pipeline that finds one face per call and matches nobody: a stranger."""

    def identify(self, image, gallery, matcher):
        return [Identified(Face(np.array([0, 0, 40, 40], np.float32), 0.99), Match(None, 0.1))]

    def warm(self, pass_coming: bool) -> None:
        """Nothing to load or release."""
