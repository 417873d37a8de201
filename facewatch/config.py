"""Typed settings from config.yaml: the packaged defaults, one user file merged over them, every value checked.

The dataclasses below are the schema (keys, types, bounds); the packaged config.yaml holds every default and
documents it. Loading only reads files: facewatch never writes a config.

A config file is treated as hostile input (docs/security.md):
 1. Only a regular file is read, opened non-blocking and read up to MAX_CONFIG_BYTES (a FIFO, /dev/zero or a
    huge file is refused with one line, never waited on).
 2. YAML aliases are limited to MAX_ALIASES and nesting to MAX_DEPTH, so a few hundred bytes cannot expand into
    gigabytes or overflow the stack.
 3. A value quoted in a message is cut to a few dozen characters without being written out in full first.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from facewatch import paths

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")
USER_CONFIG_NAME = "config.yaml"
ENV_CONFIG = "FACEWATCH_CONFIG"
ENV_MODEL_DIR = "FACEWATCH_MODEL_DIR"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_ALIASES = 50
MAX_DEPTH = 20


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the key, the value and what is allowed."""


def _rule(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    multiple_of: int | None = None,
    existing_path: bool = False,
    folder: bool = False,
) -> Any:
    """A schema field with bounds beyond its type; `existing_path` resolves a relative file that exists,
    `folder` refuses a path that exists but is not a folder."""
    bounds = {"ge": ge, "gt": gt, "le": le, "multiple_of": multiple_of, "existing_path": existing_path,
              "folder": folder}
    return field(metadata={"rule": bounds})


@dataclass(frozen=True)
class Camera:
    """Where frames come from and how often they are processed."""

    source: int | str = _rule(ge=0, existing_path=True)
    fps: float = _rule(gt=0)
    active_fps: float = _rule(gt=0)
    width: int = _rule(ge=1)
    height: int = _rule(ge=1)
    reconnect_initial_s: float = _rule(gt=0)
    reconnect_max_s: float = _rule(gt=0)
    stall_timeout_s: float = _rule(gt=0)


@dataclass(frozen=True)
class Person:
    """The YOLO person detector run on every processed frame."""

    model: str = _rule(existing_path=True)
    imgsz: int = _rule(multiple_of=32)
    confidence: float = _rule(ge=0, le=1)
    nms_iou: float = _rule(ge=0, le=1)


@dataclass(frozen=True)
class Face:
    """The MTCNN face detector run on a trigger."""

    min_face_size: int = _rule(ge=1)
    thresholds: tuple[float, float, float] = _rule(ge=0, le=1)
    min_probability: float = _rule(ge=0, le=1)


@dataclass(frozen=True)
class Embedding:
    """Which FaceNet weights turn a face crop into a 512-d embedding."""

    weights: Literal["auto", "vggface2", "casia-webface"]
    release_idle_s: float = _rule(ge=0)


@dataclass(frozen=True)
class Matching:
    """How an embedding is compared with the gallery; threshold None = each person's calibrated point."""

    method: Literal["cosine", "siamese"]
    threshold: float | None = _rule(ge=0, le=1)


@dataclass(frozen=True)
class Gallery:
    """The enrolled people's photos; dir None = the user data dir (see Config.gallery_dir)."""

    dir: Path | None = _rule(folder=True)


@dataclass(frozen=True)
class Enroll:
    """Which photos enrollment refuses, measured on the face as FaceNet sees it (resized to 160x160)."""

    min_sharpness: float = _rule(ge=0)
    min_contrast: float = _rule(ge=0)
    max_brightness: float = _rule(ge=0, le=255)


@dataclass(frozen=True)
class Trigger:
    """When the face pass runs: a count change that held for the cooldown, or a periodic recheck."""

    cooldown_s: float = _rule(ge=0)
    recheck_s: float = _rule(ge=0)
    retry_s: float = _rule(ge=0)


@dataclass(frozen=True)
class Tracking:
    """How person tracks keep their identity between face passes."""

    match_iou: float = _rule(ge=0, le=1)
    reverify_iou: float = _rule(ge=0, le=1)
    max_missed_s: float = _rule(ge=0)
    appearance_change: float = _rule(gt=0, le=1)
    scene_cut: float = _rule(gt=0, le=1)


@dataclass(frozen=True)
class Policy:
    """When the screen is locked or the user notified."""

    unknown_seconds: float = _rule(ge=0)
    away_seconds: float = _rule(ge=0)
    onlooker: Literal["notify", "lock", "off"]
    grace_seconds: float = _rule(ge=0)
    camera_lost: Literal["notify", "lock"]
    camera_in_use: Literal["notify", "lock_if_idle", "nothing"]
    camera_in_use_idle_s: float = _rule(ge=0)


@dataclass(frozen=True)
class Liveness:
    """Whether an owner's face must show natural motion (not a still or moved photo) to stay the owner."""

    enabled: bool
    window_s: float = _rule(gt=0)
    samples: int = _rule(ge=3)
    threshold: float = _rule(ge=0)


@dataclass(frozen=True)
class Log:
    """The event log and the console log level."""

    events: bool
    events_max_mb: float = _rule(gt=0)
    events_keep: int = _rule(ge=0, le=100)
    level: Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class Config:
    """All settings; `config_file` is the file merged over the packaged defaults (or the defaults themselves)."""

    engine: Literal["auto", "torch", "onnx"]
    model_dir: Path | None = _rule(folder=True)
    camera: Camera
    person: Person
    face: Face
    embedding: Embedding
    matching: Matching
    gallery: Gallery
    enroll: Enroll
    trigger: Trigger
    tracking: Tracking
    policy: Policy
    liveness: Liveness
    log: Log
    # Where the settings came from, for `facewatch doctor`; not a key of the file, not part of equality.
    config_file: Path = field(compare=False, metadata={"not_in_file": True})

    @property
    def gallery_dir(self) -> Path:
        """The gallery folder: gallery.dir if set, else reference_faces in the user data dir."""
        return self.gallery.dir if self.gallery.dir is not None else paths.data_dir() / "reference_faces"


def load_config(path: Path | None = None) -> Config:
    """Read the config: `path`, else $FACEWATCH_CONFIG, else the user's config.yaml, merged over the defaults."""
    chosen = _choose_file(path)
    layers = [(DEFAULT_CONFIG, _read_mapping(DEFAULT_CONFIG))]
    if chosen is not None:
        layers.append((chosen, _read_mapping(chosen)))
    return Config(**_settings(Config, layers, ""), config_file=chosen or DEFAULT_CONFIG)


def user_config_file() -> Path:
    """The user's config.yaml: read when neither --config nor $FACEWATCH_CONFIG names another file."""
    return paths.config_dir() / USER_CONFIG_NAME


def file_to_edit(config: Config) -> Path:
    """Where a setting of `config` is changed: its own file, or the user's when only the defaults are in force."""
    return user_config_file() if config.config_file == DEFAULT_CONFIG else config.config_file


def keys_set_by(path: Path) -> set[str]:
    """The dotted keys one config file sets (`camera.fps`), for `facewatch config --show`."""

    def walk(mapping: dict, prefix: str) -> set[str]:
        keys = set()
        for name, value in mapping.items():
            dotted = f"{prefix}{name}"
            keys |= walk(value, dotted + ".") if isinstance(value, dict) else {dotted}
        return keys

    return walk(_read_mapping(path), "")


def model_dirs(config: Config) -> list[Path]:
    """Model directories to search, first one written: $FACEWATCH_MODEL_DIR, else model_dir, else the cache."""
    try:
        listed = [Path(p).expanduser() for p in os.environ.get(ENV_MODEL_DIR, "").split(os.pathsep) if p]
    except RuntimeError:  # ~nouser/...
        raise ConfigError(f"${ENV_MODEL_DIR} = {_show(os.environ[ENV_MODEL_DIR])}: names a ~user that does not exist") from None
    if listed:
        return listed
    if config.model_dir is not None:
        return [config.model_dir]
    return [paths.cache_dir() / "models"]


# ---------------------------------------------------------------------------------------------- finding files


def _choose_file(path: Path | None) -> Path | None:
    """The file to merge over the defaults; a named file must exist, a missing user-dir file means defaults."""
    if path is not None:
        return _must_exist(Path(path), "given with --config")
    named = os.environ.get(ENV_CONFIG)
    if named:
        return _must_exist(Path(named), f"named by ${ENV_CONFIG}")
    user = user_config_file()
    return user if user.exists() else None


def _must_exist(path: Path, why: str) -> Path:
    """Return `path` (with ~ expanded) or fail naming who asked for it."""
    path = path.expanduser()
    if not path.exists():
        raise ConfigError(f"{path}: config file not found ({why})")
    return path


# ---------------------------------------------------------------------------------------------- reading YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads only true/false as booleans (so `onlooker: off` is the text "off", as in
    YAML 1.2), rejects a key given twice instead of silently keeping the last one, and bounds aliases and
    nesting (rule 2)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, counting aliases and depth before the value can grow (rule 2)."""
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name); write the values out", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """Build a mapping, failing with the line of a repeated key."""
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_show(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _read_mapping(path: Path) -> dict:
    """Parse one config file into a dict (an empty file is an empty dict), or fail with the line at fault."""
    raw = _read_bounded(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: builds no arbitrary objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: {where}invalid YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    except ValueError as e:  # an integer of thousands of digits, a date like 2024-13-45
        raise ConfigError(f"{path}: invalid value: {_cut(str(e))}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of settings (key: value lines), got {_kind(data)}"
        )
    return data


def _read_bounded(path: Path) -> bytes:
    """Rule 1: the bytes of a regular file of at most MAX_CONFIG_BYTES, never blocking on a FIFO or device."""
    try:
        return paths.read_regular(path, MAX_CONFIG_BYTES)
    except paths.NotRegularFile as e:
        raise ConfigError(f"{path}: is {e.kind}, not a config file") from None
    except paths.FileTooLarge:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KB; not a facewatch config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from None


# ---------------------------------------------------------------------------------------------- checking values


Layer = tuple[Path, dict]


def _settings(cls: type, layers: list[Layer], prefix: str) -> dict[str, Any]:
    """Keyword arguments for dataclass `cls`: each key from the last layer that sets it, checked and converted."""
    hints = typing.get_type_hints(cls)
    schema = [f for f in dataclasses.fields(cls) if not f.metadata.get("not_in_file")]
    for path, mapping in layers:
        _reject_unknown(path, mapping, [f.name for f in schema], prefix)
    values: dict[str, Any] = {}
    for f in schema:
        key, hint = prefix + f.name, hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            sections = [_section(p, m, key) for p, m in layers if f.name in m]
            values[f.name] = hint(**_settings(hint, sections, key + "."))
            continue
        setting = [(p, m[f.name]) for p, m in layers if f.name in m]
        if not setting:
            raise ConfigError(f"{DEFAULT_CONFIG}: {key}: missing key (every setting needs a default here)")
        path, value = setting[-1]
        try:
            values[f.name] = _coerce(hint, f.metadata.get("rule", {}), value, path.absolute().parent)
        except _Invalid as e:
            raise ConfigError(f"{path}: {key} = {_show(value)}: must be {e.args[0]}") from None
    return values


def _section(path: Path, mapping: dict, key: str) -> Layer:
    """One layer's part for section `key`; an empty section (`camera:` alone) sets nothing."""
    value = mapping[key.rsplit(".", 1)[-1]]
    if value is None:
        return path, {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} = {_show(value)}: must be a mapping of {key} settings")
    return path, value


def _reject_unknown(path: Path, mapping: dict, known: list[str], prefix: str) -> None:
    """Fail on the first key the schema lacks, suggesting the closest known one."""
    for name in mapping:
        if name in known:
            continue
        name = str(name)
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            hint = f" (did you mean {prefix}{close[0]}?)"
        elif not prefix and (nested := _nested_match(name)):
            hint = f" (did you mean {nested}?)"
        else:
            hint = f" (known keys here: {', '.join(known)})"
        raise ConfigError(f"{path}: unknown key {prefix}{name}{hint}")


def _nested_match(name: str) -> str | None:
    """For a top-level key that belongs in a section (`fps:`), the closest section key (`camera.fps`)."""
    hints = typing.get_type_hints(Config)
    nested = {
        f"{section}.{f.name}": f.name
        for section, hint in hints.items()
        if dataclasses.is_dataclass(hint)
        for f in dataclasses.fields(hint)
    }
    close = difflib.get_close_matches(name, list(nested.values()), n=1)
    return next(dotted for dotted, leaf in nested.items() if leaf == close[0]) if close else None


class _Invalid(Exception):
    """A value does not fit its field; args[0] says what is allowed, to follow "must be"."""


_NOUNS = {int: ("an integer", "integers"), float: ("a number", "numbers")}
_COUNTS = {2: "two", 3: "three", 4: "four"}


def _coerce(hint: Any, rule: dict, value: Any, base: Path) -> Any:
    """Check `value` against an annotation and its rule; return it converted (int→float, list→tuple, str→Path)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options_wanted = []
        for option in typing.get_args(hint):
            try:
                return _coerce(option, rule, value, base)
            except _Invalid as e:
                options_wanted.append(e.args[0])
        raise _Invalid(" or ".join(options_wanted))
    if hint is type(None):
        if value is None:
            return None
        raise _Invalid("null")
    if origin is Literal:
        options = typing.get_args(hint)
        if isinstance(value, str) and value in options:
            return value
        raise _Invalid("one of " + ", ".join(options))
    if origin is tuple:
        items = typing.get_args(hint)
        wanted = f"a list of {_COUNTS.get(len(items), len(items))} {_NOUNS[items[0]][1]}{_bounds(rule)}"
        if not isinstance(value, list) or len(value) != len(items):
            raise _Invalid(wanted)
        try:
            return tuple(_coerce(item, rule, v, base) for item, v in zip(items, value))
        except _Invalid:
            raise _Invalid(wanted) from None
    if hint in _NOUNS:
        return _number(hint, rule, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid("true or false")
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid("a non-empty string")
        beside = base / _expand(value)
        return str(beside) if rule.get("existing_path") and "://" not in value and beside.exists() else value
    if hint is Path:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid("a path")
        path = base / _expand(value)
        if rule.get("folder") and path.exists() and not path.is_dir():
            raise _Invalid("a folder (this is a file)")
        return path
    raise TypeError(f"config schema: no check for type {hint!r}")


def _expand(value: str) -> Path:
    """`~` and `~user` expanded; a user that does not exist is a bad value, not a crash."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise _Invalid("a path whose ~user exists") from None


def _number(hint: type, rule: dict, value: Any) -> int | float:
    """Check a number against its kind (bool is not a number; int is accepted for float) and bounds."""
    step = rule.get("multiple_of")
    wanted = f"a positive multiple of {step}" if step else _NOUNS[hint][0] + _bounds(rule)
    accepted = int if hint is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, accepted) or not math.isfinite(value):
        raise _Invalid(wanted)
    lower_ok = (rule.get("ge") is None or value >= rule["ge"]) and (rule.get("gt") is None or value > rule["gt"])
    upper_ok = rule.get("le") is None or value <= rule["le"]
    multiple_ok = not step or (value > 0 and value % step == 0)
    if not (lower_ok and upper_ok and multiple_ok):
        raise _Invalid(wanted)
    return hint(value)


def _bounds(rule: dict) -> str:
    """The bounds of a rule in words: " in [0, 1]", " >= 0", " > 0", or ""."""
    ge, gt, le = rule.get("ge"), rule.get("gt"), rule.get("le")
    if ge is not None and le is not None:
        return f" in [{ge}, {le}]"
    if ge is not None:
        return f" >= {ge}"
    if gt is not None:
        return f" > {gt}"
    return ""


def _show(value: Any) -> str:
    """A value as the user would write it in YAML-ish JSON (true, null, "text", [1, 2]), kept short (rule 3)."""
    return _cut(_clipped_json(value, 61, 0))


def _cut(text: str) -> str:
    """Text cut to 60 characters for a one-line message."""
    return text if len(text) <= 60 else text[:57] + "..."


def _clipped_json(value: Any, budget: int, depth: int) -> str:
    """JSON of `value` written only until about `budget` characters: an alias bomb or a self-referencing
    list is never expanded in full."""
    if isinstance(value, (list, dict)):
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        parts, used = [], 2
        for key, item in items:
            if used >= budget or depth >= 8:
                parts.append("...")
                break
            part = _clipped_json(item, budget - used, depth + 1)
            if isinstance(value, dict):
                part = f"{_clipped_json(key, budget - used, depth + 1)}: {part}"
            parts.append(part)
            used += len(part) + 2
        body = ", ".join(parts)
        return f"{{{body}}}" if isinstance(value, dict) else f"[{body}]"
    if isinstance(value, str):
        value = value[:budget]
    return json.dumps(value, ensure_ascii=False, default=str)


def _kind(value: Any) -> str:
    """What a top-level YAML value is, in the user's words."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "plain text"
    return f"the value {_show(value)}"
