"""Memory the tray backends add: RSS after importing each, in a fresh process per module, on top of Pillow.

Usage: .venv/bin/python bench/tray_import.py
Prints one line per module: the RSS the import adds (MB) and how many modules it loads. facewatch.ui.sni is
the StatusNotifierItem backend (jeepney); pystray's backend needs an X display (DISPLAY) and is skipped without.
D-Bus libraries that were not chosen can be measured too when installed (dbus_next, dbus_fast).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from common import REPO

PROBE = r'''
import importlib, json, sys
sys.path.insert(0, {bench!r})
from common import rss_mb
import PIL.Image  # every backend draws the icon with Pillow: the baseline
before, loaded = rss_mb(), len(sys.modules)
importlib.import_module({module!r})
print(json.dumps({{"mb": rss_mb() - before, "modules": len(sys.modules) - loaded}}))
'''

MODULES = ["jeepney.io.threading", "facewatch.ui.sni", "pystray", "dbus_next", "dbus_fast"]


def main() -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    print(f"{'module':24} {'+RSS MB':>8} {'modules':>8}")
    for module in MODULES:
        if module == "pystray" and not os.environ.get("DISPLAY"):
            print(f"{module:24} {'skipped: no DISPLAY':>17}")
            continue
        run = subprocess.run([sys.executable, "-c", PROBE.format(bench=str(REPO / "bench"), module=module)],
                             capture_output=True, text=True, env=env)
        if run.returncode != 0:
            print(f"{module:24} {'not installed' if 'ModuleNotFoundError' in run.stderr else 'failed':>17}")
            continue
        row = json.loads(run.stdout)
        print(f"{module:24} {row['mb']:8.1f} {row['modules']:8d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
