"""`facewatch autostart enable|disable|status [--systemd]`: start the tray app at login, per the OS's own
mechanism (or a systemd user unit); the entry carries --config and the facewatch variables of this shell."""

from __future__ import annotations

import argparse
import sys

from facewatch.system import autostart


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`autostart` takes one action, and --systemd to use a systemd user unit instead of the desktop's list."""
    parser.add_argument("action", choices=["enable", "disable", "status"])
    parser.add_argument("--systemd", action="store_true",
                        help=f"a systemd user unit bound to {autostart.SYSTEMD_TARGET}, restarted on failure "
                             "(Linux sessions that start that target: GNOME, KDE Plasma)")


def handle(args: argparse.Namespace) -> int:
    """Enable, disable or report the login entry; it only ever touches facewatch's own entry."""
    try:
        backend = autostart.for_platform(systemd=args.systemd)
        if args.action == "enable":
            where = autostart.enable(backend=backend, config=args.config)
            print(f"facewatch will start at login: {where}")
            if args.systemd:
                print("to start it now: systemctl --user daemon-reload && systemctl --user start facewatch")
        elif args.action == "disable":
            print("login start removed" if autostart.disable(backend) else autostart.status(backend))
        else:
            print(autostart.status(backend))
    except autostart.AutostartError as exc:
        print(f"facewatch: {exc}", file=sys.stderr)
        return 1
    return 0
