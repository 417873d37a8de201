"""`facewatch config --path | --init | --show`: where the user config lives, a commented copy to start from, and
the settings in force with where each one came from."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from facewatch import paths
from facewatch.config import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    ENV_MODEL_DIR,
    Config,
    keys_set_by,
    load_config,
    user_config_file,
)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Exactly one of --path, --init, --show."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--path", action="store_true", help="print where the user config file goes")
    what.add_argument("--init", action="store_true",
                      help="create the user config file as a commented copy of every default (never overwrites)")
    what.add_argument("--show", action="store_true",
                      help="print every setting in force and where it came from (default, user file, --config, env)")


def origin_of_file(config: Config, given: Path | None) -> str:
    """Who chose the file merged over the defaults, in the order load_config tries them."""
    if given is not None:
        return "--config"
    if os.environ.get(ENV_CONFIG):
        return f"env {ENV_CONFIG}"
    return "user file" if config.config_file != DEFAULT_CONFIG else "default"


def commented_defaults() -> str:
    """The packaged config.yaml with every setting commented out: sections stay, so uncommenting one line under
    its section changes just that setting, and `--show` keeps telling defaults from the user's own values."""
    lines = []
    for line in DEFAULT_CONFIG.read_text(encoding="utf-8").splitlines():
        is_setting = line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":")
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(f"{indent}# {line.lstrip()}" if is_setting else line)
    return "\n".join(lines) + "\n"


def init_user_config(path: Path) -> str:
    """Write commented_defaults() to `path` unless something is there (a file, a link, anything)."""
    paths.private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return f"{path} already exists: edit it, or move it away and run `facewatch config --init` again"
    with os.fdopen(fd, "wb") as f:
        f.write(commented_defaults().encode("utf-8"))
    return f"created {path}: every setting, commented out at its default; uncomment and change what you need"


def settings_with_origin(config: Config, origin: str) -> list[tuple[str, object, str]]:
    """(dotted key, value in force, where it came from) for every setting, in the order of config.yaml."""
    from_file = keys_set_by(config.config_file) if origin != "default" else set()
    rows = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            if f.metadata.get("not_in_file"):
                continue
            key, value = prefix + f.name, getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, key + ".")
                continue
            rows.append((key, value, origin if key in from_file else "default"))

    walk(config, "")
    if os.environ.get(ENV_MODEL_DIR):
        rows = [(k, os.environ[ENV_MODEL_DIR], f"env {ENV_MODEL_DIR}") if k == "model_dir" else (k, v, o)
                for k, v, o in rows]
    return rows


def _show(value: object) -> str:
    """A value as YAML would spell it (null, true, "text" only where plain text would mislead)."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if not isinstance(value, str) else value


def handle(args: argparse.Namespace) -> int:
    """Print the path, create the file, or list the settings in force."""
    path = user_config_file()
    if args.path:
        state = "exists" if path.exists() else "not created yet: `facewatch config --init` writes a commented copy"
        print(f"{path} ({state})")
        return 0
    if args.init:
        print(init_user_config(path))
        return 0
    config = load_config(args.config)
    origin = origin_of_file(config, args.config)
    print(f"# settings in force; file merged over the defaults: "
          f"{config.config_file if origin != 'default' else 'none (built-in defaults only)'}")
    rows = settings_with_origin(config, origin)
    width = max(len(f"{key} = {_show(value)}") for key, value, _ in rows)
    for key, value, where in rows:
        print(f"{f'{key} = {_show(value)}':<{width}}  # {where}")
    return 0
