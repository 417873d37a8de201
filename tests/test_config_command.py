"""`facewatch config`: the user config path, a commented copy that changes nothing until edited, and every
setting in force with where it came from."""

from __future__ import annotations

import os

import pytest

from facewatch.cli import main


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _origins(out: str) -> dict[str, str]:
    rows = [line for line in out.splitlines() if not line.startswith("#")]
    return {line.split(" = ")[0]: line.rsplit("# ", 1)[1] for line in rows}


def test_path_then_init_then_show(capsys, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FACEWATCH_HOME", str(home))
    monkeypatch.delenv("FACEWATCH_CONFIG", raising=False)
    monkeypatch.delenv("FACEWATCH_MODEL_DIR", raising=False)
    user = home / "config" / "config.yaml"
    code, out = _cli(capsys, "config", "--path")
    assert code == 0 and out.startswith(f"{user} (not created yet: `facewatch config --init`")

    code, out = _cli(capsys, "config", "--init")
    assert code == 0 and out.startswith(f"created {user}") and os.stat(user).st_mode & 0o777 == 0o600
    # Every setting is commented out: the new file changes nothing until the user edits it.
    assert set(_origins(_cli(capsys, "config", "--show")[1]).values()) == {"default"}

    user.write_text(user.read_text().replace("  # fps: 2.0", "  fps: 3.0"))
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", str(tmp_path))
    code, out = _cli(capsys, "config", "--show")
    origins = _origins(out)
    assert "camera.fps = 3.0" in out and origins["camera.fps"] == "user file"
    assert origins["camera.active_fps"] == "default" and origins["model_dir"] == "env FACEWATCH_MODEL_DIR"

    code, out = _cli(capsys, "config", "--init")
    assert "already exists" in out and "fps: 3.0" in user.read_text()  # never overwritten


def test_show_names_a_config_given_on_the_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACEWATCH_MODEL_DIR", raising=False)
    given = tmp_path / "mine.yaml"
    given.write_text("policy:\n  onlooker: lock\n")
    code, out = _cli(capsys, "--config", str(given), "config", "--show")
    origins = _origins(out)
    assert code == 0 and origins["policy.onlooker"] == "--config" and origins["policy.grace_seconds"] == "default"


def test_init_never_writes_through_a_link(capsys, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FACEWATCH_HOME", str(home))
    (home / "config").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    (home / "config" / "config.yaml").symlink_to(target)
    code, out = _cli(capsys, "config", "--init")
    assert "already exists" in out and not target.exists()


@pytest.mark.parametrize("flags", [[], ["--path", "--show"]])
def test_exactly_one_action(capsys, flags):
    with pytest.raises(SystemExit) as exc:
        main(["config", *flags])
    assert exc.value.code == 2
