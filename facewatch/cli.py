"""`facewatch` command line: parses arguments and hands each command to its module in facewatch/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from facewatch import __version__
from facewatch.ui.console import quiet_native_logs

# command name → (module in facewatch.commands, one-line help)
COMMANDS = {
    "run": ("run", "watch the camera (or replay a video) and lock the screen on a stranger"),
    "tray": ("tray", "run the watcher under a tray icon (what login start runs)"),
    "enroll": ("enroll", "add photos of a person to the gallery, from files or the camera"),
    "list": ("gallery", "list enrolled people and their photos"),
    "remove": ("gallery", "remove an enrolled person and their photos"),
    "forget": ("forget", "delete all stored biometric data: enrolled photos, gallery caches, event log"),
    "models": ("models", "list, verify or build the model files"),
    "eval": ("eval", "measure accuracy: LFW 10-fold verification, open-set identification on a folder of people"),
    "train-siamese": ("train_siamese", "train the Siamese matcher head on LFW (+ AT&T faces), compare it with cosine"),
    "doctor": ("doctor", "check the installation, models, camera and screen lock; print fixes"),
    "autostart": ("autostart", "start facewatch at login: enable, disable or status"),
    "config": ("config", "where the user config goes (--path), create it (--init), settings in force (--show)"),
}


class UserError(Exception):
    """An error the user can fix; printed as one line, never with a traceback."""


class _MaskSecrets(logging.Filter):
    """Hides stream passwords in every log line, whichever module logs the URL (docs/security.md)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Format the message once, masked; the record then carries no arguments."""
        from facewatch.capture import mask_secrets

        record.msg, record.args = mask_secrets(record.getMessage()), None
        return True


def build_parser() -> argparse.ArgumentParser:
    """The full parser: global options plus one sub-parser per command, each filled by its module."""
    parser = argparse.ArgumentParser(prog="facewatch", description=__doc__.split(":")[0])
    parser.add_argument("--version", action="version", version=f"facewatch {__version__}")
    parser.add_argument("--config", type=Path, help="config file (default: $FACEWATCH_CONFIG, user config, built-in)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(f"facewatch.commands.{module}")
        mod.add_arguments(name, command)
        command.set_defaults(handler=mod.handle)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    words = sys.argv[1:] if argv is None else argv
    # OpenCV, its FFmpeg and its Qt read their log settings once, when cv2 is first imported: set them now.
    quiet_native_logs(verbose=bool({"-v", "--verbose"} & set(words)))
    from facewatch.capture import SourceError, mask_secrets
    from facewatch.config import ConfigError
    from facewatch.identity.cohort import CohortError
    from facewatch.weights.registry import ModelError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_MaskSecrets())
    try:
        return int(args.handler(args) or 0)
    except (UserError, ConfigError, ModelError, CohortError, SourceError, FileNotFoundError) as exc:
        print(f"facewatch: error: {mask_secrets(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
