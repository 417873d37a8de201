"""config.py: packaged defaults, lookup order, merging, path resolution and the exact error messages."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from facewatch import paths
from facewatch.config import (
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    load_config,
    model_dirs,
)

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    """Write a config file (parents created) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cfg(tmp_path):
    """Load a config given as YAML text from a file in a temp dir."""

    def load(text: str) -> Config:
        return load_config(write(load.path, text))

    load.path = tmp_path / "config.yaml"
    return load


def error(cfg, text: str) -> str:
    """The ConfigError message a YAML text produces, with the file path replaced by "FILE"."""
    with pytest.raises(ConfigError) as info:
        cfg(text)
    return str(info.value).replace(str(cfg.path), "FILE")


# ------------------------------------------------------------------------------------------ packaged defaults


def test_packaged_default_loads_with_the_documented_values():
    config = load_config(DEFAULT_CONFIG)
    assert config.config_file == DEFAULT_CONFIG
    assert config.engine == "auto"
    assert config.model_dir is None
    assert config.camera.source == 0
    assert config.camera.fps == 2.0 and config.camera.active_fps == 8.0
    assert (config.camera.width, config.camera.height) == (640, 480)
    assert config.person.model == "yolov5nu.pt"
    assert config.person.imgsz == 320
    assert config.face.thresholds == (0.6, 0.7, 0.7)
    assert config.embedding.weights == "auto"
    assert (config.matching.method, config.matching.threshold) == ("cosine", None)
    assert config.trigger.cooldown_s == 0.5 and config.trigger.recheck_s == 30.0
    assert config.policy.onlooker == "notify" and config.policy.camera_lost == "notify"
    assert (config.log.events, config.log.level) == (True, "info")


def test_ints_in_the_yaml_become_floats_where_the_field_is_a_float():
    config = load_config(DEFAULT_CONFIG)
    assert config.policy.away_seconds == 0.0 and type(config.policy.away_seconds) is float
    assert type(config.camera.width) is int


def test_no_user_file_means_the_packaged_defaults(isolated_home):
    config = load_config()
    assert config == load_config(DEFAULT_CONFIG)
    assert config.config_file == DEFAULT_CONFIG
    assert config.gallery_dir == isolated_home / "data" / "reference_faces"


def test_repo_root_config_yaml_is_the_packaged_default():
    assert (REPO / "config.yaml").resolve() == DEFAULT_CONFIG.resolve()
    assert load_config(REPO / "config.yaml") == load_config(DEFAULT_CONFIG)


@pytest.mark.parametrize(
    "cut, key", [("  stall_timeout_s: 5.0\n", "camera.stall_timeout_s"), ("log:\n", "log.events")]
)
def test_every_setting_needs_its_default_in_the_packaged_file(tmp_path, monkeypatch, cut, key):
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    trimmed = text.split(cut)[0] if cut == "log:\n" else text.replace(cut, "")
    default = write(tmp_path / "default.yaml", trimmed)
    monkeypatch.setattr("facewatch.config.DEFAULT_CONFIG", default)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == f"{default}: {key}: missing key (every setting needs a default here)"


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.camera.fps = 5.0  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "# only comments\n\n# here\n", "camera:\n", "camera:\n  # fps: 5\n"])
def test_empty_file_or_section_means_all_defaults(cfg, text):
    assert cfg(text) == load_config(DEFAULT_CONFIG)


# ------------------------------------------------------------------------------------------ merging and lookup


def test_user_file_is_merged_key_by_key_over_the_defaults(cfg, tmp_path):
    config = cfg("camera:\n  fps: 5\npolicy:\n  away_seconds: 60\n")
    assert config.camera.fps == 5.0
    assert config.camera.active_fps == 8.0 and config.camera.width == 640  # rest of the section kept
    assert config.policy.away_seconds == 60.0 and config.policy.grace_seconds == 10.0
    assert config.person == load_config(DEFAULT_CONFIG).person
    assert config.config_file == tmp_path / "config.yaml"


def test_lookup_order_explicit_then_env_then_user_dir_then_packaged(tmp_path, monkeypatch):
    explicit = write(tmp_path / "explicit.yaml", "trigger:\n  cooldown_s: 4\n")
    env = write(tmp_path / "env.yaml", "trigger:\n  cooldown_s: 3\n")
    user = write(paths.config_dir() / "config.yaml", "trigger:\n  cooldown_s: 2\n")
    monkeypatch.setenv("FACEWATCH_CONFIG", str(env))

    assert (load_config(explicit).trigger.cooldown_s, load_config(explicit).config_file) == (4.0, explicit)
    assert (load_config().trigger.cooldown_s, load_config().config_file) == (3.0, env)
    monkeypatch.delenv("FACEWATCH_CONFIG")
    assert (load_config().trigger.cooldown_s, load_config().config_file) == (2.0, user)
    user.unlink()
    assert (load_config().trigger.cooldown_s, load_config().config_file) == (0.5, DEFAULT_CONFIG)


def test_empty_env_variable_is_ignored(monkeypatch):
    monkeypatch.setenv("FACEWATCH_CONFIG", "")
    assert load_config().config_file == DEFAULT_CONFIG


def test_missing_explicit_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: config file not found (given with --config)"


def test_missing_env_file_is_an_error_even_with_a_user_file(tmp_path, monkeypatch):
    write(paths.config_dir() / "config.yaml", "")
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("FACEWATCH_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == f"{missing}: config file not found (named by $FACEWATCH_CONFIG)"


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read the config file: ")  # strerror varies by OS


def test_loading_never_modifies_or_creates_files(tmp_path):
    path = write(tmp_path / "config.yaml", "camera:\n  fps: 5\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = (path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir()))
    load_config(path)
    load_config()
    assert (path.read_bytes(), path.stat().st_mtime_ns, sorted(tmp_path.iterdir())) == before
    assert not paths.config_dir().exists()  # the user config dir is not even created


# ------------------------------------------------------------------------------------------ paths


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path):
    write(tmp_path / "clips" / "desk.mp4", "")
    config = load_config(
        write(
            tmp_path / "conf" / "config.yaml",
            "model_dir: models\ngallery:\n  dir: ../faces\ncamera:\n  source: ../clips/desk.mp4\n",
        )
    )
    assert config.model_dir == tmp_path / "conf" / "models"
    assert config.gallery.dir == config.gallery_dir == tmp_path / "conf" / "../faces"
    assert config.camera.source == str(tmp_path / "conf" / "../clips/desk.mp4")


def test_relative_config_path_resolves_against_its_absolute_directory(tmp_path, monkeypatch):
    write(tmp_path / "config.yaml", "model_dir: models\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("config.yaml")).model_dir == tmp_path / "models"


@pytest.mark.parametrize(
    "source, expected",
    [
        (0, 0),
        (2, 2),
        ('"rtsp://cam.local/stream"', "rtsp://cam.local/stream"),
        ('"/dev/video0"', "/dev/video0"),
        ("missing.mp4", "missing.mp4"),  # not a file beside the config: kept as given
    ],
)
def test_camera_source_kept_unless_a_relative_file_exists(cfg, source, expected):
    assert cfg(f"camera:\n  source: {source}\n").camera.source == expected


def test_home_is_expanded_in_paths(cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cfg("model_dir: ~/models\n").model_dir == tmp_path / "home" / "models"


def test_unicode_and_spaces_in_paths(tmp_path, monkeypatch):
    folder = tmp_path / "réglages été" / "ma conf"
    path = write(folder / "config.yaml", "model_dir: modèles 2\ngallery:\n  dir: visages connus\n")
    monkeypatch.setenv("FACEWATCH_CONFIG", str(path))
    config = load_config()
    assert config.config_file == path
    assert config.model_dir == folder / "modèles 2"
    assert config.gallery_dir == folder / "visages connus"
    assert load_config(path) == config


def test_model_dirs_env_then_config_then_cache(cfg, monkeypatch, tmp_path, isolated_home):
    monkeypatch.delenv("FACEWATCH_MODEL_DIR", raising=False)
    assert model_dirs(load_config()) == [isolated_home / "cache" / "models"]
    config = cfg("model_dir: models\n")
    assert model_dirs(config) == [tmp_path / "models"]
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", os.pathsep.join(["/a/build", "", "/b/shared"]))
    assert model_dirs(config) == [Path("/a/build"), Path("/b/shared")]


# ------------------------------------------------------------------------------------------ error messages


def test_error_message_names_file_key_value_and_rule(tmp_path):
    path = write(tmp_path / "config.yaml", "trigger:\n  cooldown_s: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: trigger.cooldown_s = -1: must be a number >= 0"
    assert isinstance(info.value, ValueError)


def test_invalid_yaml_reports_the_line(cfg):
    assert error(cfg, "camera:\n  fps: 2\n  width: [640\n") == (
        "FILE: line 4, column 1: invalid YAML: expected ',' or ']', but got '<stream end>'"
    )
    assert error(cfg, "camera:\n  fps: 2\n bad: 1\n").startswith("FILE: line 3, column 2: invalid YAML: ")


def test_duplicate_key_is_rejected_with_its_line(cfg):
    assert error(cfg, "camera:\n  fps: 3\nperson: {}\ncamera:\n  width: 320\n") == (
        'FILE: line 4, column 1: invalid YAML: duplicate key "camera"'
    )


def test_not_utf8_is_rejected(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"engine: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: not UTF-8 text (bad byte at offset 8)"


@pytest.mark.parametrize(
    "text, kind", [("- camera\n- person\n", "a list"), ("just words\n", "plain text"), ("42\n", "the value 42")]
)
def test_top_level_must_be_a_mapping(cfg, text, kind):
    assert error(cfg, text) == f"FILE: the top level must be a mapping of settings (key: value lines), got {kind}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("camera:\n  fsp: 3\n", "unknown key camera.fsp (did you mean camera.fps?)"),
        ("camra:\n  fps: 3\n", "unknown key camra (did you mean camera?)"),
        ("tresholds: [0.5, 0.5, 0.5]\n", "unknown key tresholds (did you mean face.thresholds?)"),
        ("policy:\n  away_secs: 5\n", "unknown key policy.away_secs (did you mean policy.away_seconds?)"),
        ("log:\n  zzz: 1\n", "unknown key log.zzz (known keys here: events, level)"),
    ],
)
def test_unknown_keys_suggest_the_closest_known_key(cfg, text, message):
    assert error(cfg, text) == f"FILE: {message}"


def test_section_must_be_a_mapping(cfg):
    assert error(cfg, "camera: 0\n") == "FILE: camera = 0: must be a mapping of camera settings"


@pytest.mark.parametrize(
    "text, message",
    [
        # types: bool is not a number, text is not a number, a float is not an integer
        ("camera:\n  fps: true\n", 'camera.fps = true: must be a number > 0'),
        ('trigger:\n  cooldown_s: "1"\n', 'trigger.cooldown_s = "1": must be a number >= 0'),
        ("camera:\n  width: 640.0\n", "camera.width = 640.0: must be an integer >= 1"),
        ("camera:\n  fps: .nan\n", "camera.fps = NaN: must be a number > 0"),
        ("log:\n  events: 1\n", "log.events = 1: must be true or false"),
        ("log:\n  events: yes\n", 'log.events = "yes": must be true or false'),  # YAML 1.2 booleans only
        ("person:\n  model: ''\n", 'person.model = "": must be a non-empty string'),
        # ranges
        ("camera:\n  fps: 0\n", "camera.fps = 0: must be a number > 0"),
        ("camera:\n  active_fps: -2\n", "camera.active_fps = -2: must be a number > 0"),
        ("camera:\n  reconnect_initial_s: 0\n", "camera.reconnect_initial_s = 0: must be a number > 0"),
        ("person:\n  confidence: 1.5\n", "person.confidence = 1.5: must be a number in [0, 1]"),
        ("person:\n  nms_iou: -0.1\n", "person.nms_iou = -0.1: must be a number in [0, 1]"),
        ("face:\n  min_probability: 2\n", "face.min_probability = 2: must be a number in [0, 1]"),
        ("face:\n  min_face_size: 0\n", "face.min_face_size = 0: must be an integer >= 1"),
        ("tracking:\n  match_iou: 1.01\n", "tracking.match_iou = 1.01: must be a number in [0, 1]"),
        ("policy:\n  away_seconds: -5\n", "policy.away_seconds = -5: must be a number >= 0"),
        ("matching:\n  threshold: 1.5\n", "matching.threshold = 1.5: must be a number in [0, 1] or null"),
        # imgsz
        ("person:\n  imgsz: 100\n", "person.imgsz = 100: must be a positive multiple of 32"),
        ("person:\n  imgsz: 0\n", "person.imgsz = 0: must be a positive multiple of 32"),
        ("person:\n  imgsz: -64\n", "person.imgsz = -64: must be a positive multiple of 32"),
        ("person:\n  imgsz: 320.0\n", "person.imgsz = 320.0: must be a positive multiple of 32"),
        # thresholds
        ("face:\n  thresholds: [0.6, 0.7]\n",
         "face.thresholds = [0.6, 0.7]: must be a list of three numbers in [0, 1]"),
        ("face:\n  thresholds: [0.6, 0.7, 1.2]\n",
         "face.thresholds = [0.6, 0.7, 1.2]: must be a list of three numbers in [0, 1]"),
        ("face:\n  thresholds: 0.7\n", "face.thresholds = 0.7: must be a list of three numbers in [0, 1]"),
        ("face:\n  thresholds: [0.6, a, 0.7]\n",
         'face.thresholds = [0.6, "a", 0.7]: must be a list of three numbers in [0, 1]'),
        # camera.source
        ("camera:\n  source: -1\n", "camera.source = -1: must be an integer >= 0 or a non-empty string"),
        ('camera:\n  source: ""\n', 'camera.source = "": must be an integer >= 0 or a non-empty string'),
        ("camera:\n  source: false\n", "camera.source = false: must be an integer >= 0 or a non-empty string"),
        ("camera:\n  source: 1.5\n", "camera.source = 1.5: must be an integer >= 0 or a non-empty string"),
        # null only where the default is null
        ("camera:\n  fps: null\n", "camera.fps = null: must be a number > 0"),
        ("engine: ~\n", "engine = null: must be one of auto, torch, onnx"),
        ("model_dir: 5\n", "model_dir = 5: must be a path or null"),
        ("gallery:\n  dir: ''\n", 'gallery.dir = "": must be a path or null'),
    ],
)
def test_bad_values_are_rejected_with_what_is_allowed(cfg, text, message):
    assert error(cfg, text) == f"FILE: {message}"


@pytest.mark.parametrize(
    "key, allowed",
    [
        ("engine", "auto, torch, onnx"),
        ("embedding.weights", "auto, vggface2, casia-webface"),
        ("matching.method", "cosine, siamese"),
        ("policy.onlooker", "notify, lock, off"),
        ("policy.camera_lost", "notify, lock"),
        ("log.level", "debug, info, warning, error"),
    ],
)
def test_enums_accept_their_values_and_name_them_when_wrong(cfg, key, allowed):
    def nest(value: str) -> str:
        section, _, name = key.rpartition(".")
        return f"{section}:\n  {name}: {value}\n" if section else f"{key}: {value}\n"

    for value in allowed.split(", "):
        assert _get(cfg(nest(value)), key) == value
    assert error(cfg, nest("INFO")) == f'FILE: {key} = "INFO": must be one of {allowed}'


def _get(config: Config, dotted: str):
    """The value of a dotted key on a Config."""
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def test_yaml_off_is_text_not_a_boolean(cfg):
    assert cfg("policy:\n  onlooker: off\n").policy.onlooker == "off"


def test_null_is_accepted_where_the_default_is_null(cfg):
    config = cfg("model_dir: null\nmatching:\n  threshold: null\ngallery:\n  dir: ~\n")
    assert (config.model_dir, config.matching.threshold, config.gallery.dir) == (None, None, None)


def test_int_accepted_where_a_float_is_expected(cfg):
    config = cfg("matching:\n  threshold: 1\ntrigger:\n  recheck_s: 0\n")
    assert config.matching.threshold == 1.0 and type(config.matching.threshold) is float
    assert config.trigger.recheck_s == 0.0 and type(config.trigger.recheck_s) is float


def test_thresholds_become_a_tuple_of_floats(cfg):
    assert cfg("face:\n  thresholds: [0, 1, 0.5]\n").face.thresholds == (0.0, 1.0, 0.5)
