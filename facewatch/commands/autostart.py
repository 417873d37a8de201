"""`facewatch autostart enable|disable|status`: start the tray app at login, per the OS's own mechanism."""

from __future__ import annotations

import argparse

from facewatch.system import autostart


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`autostart` takes one action."""
    parser.add_argument("action", choices=["enable", "disable", "status"])


def handle(args: argparse.Namespace) -> int:
    """Enable, disable or report the login entry; it only ever touches facewatch's own entry."""
    if args.action == "enable":
        print(f"facewatch will start at login: {autostart.enable()}")
    elif args.action == "disable":
        print("login start removed" if autostart.disable() else "login start was not enabled")
    else:
        print(autostart.status())
    return 0
