"""The daemon's decision on the shared identification sets, through `facewatch eval identify --json` over 10 seeds:
exact counts per engine, the figures README "Calibration" reports (first look, then after the second look). The
LFW rows are left to the README's commands: embedding LFW's 6,700 photos three times would take CI half an hour."""

from __future__ import annotations

import json

from helpers.shared import DATA, HAVE_TORCH, REPO, need
from helpers.stills import cut

ENGINE = "torch" if HAVE_TORCH else "onnx"  # pinned: auto could pick either in the torch venv
CACHE = REPO / ".cache" / "eval"  # cached boxes and embeddings, keyed by engine, weights and settings
RUNS = {  # label -> eval identify arguments ("STILLS" is the folder of webcam stills the test cuts)
    "att": ["--data", str(DATA / "att_faces")],
    "five_celebrity": ["--data", str(DATA / "five_celebrity" / "train")],
    "webcam": ["--data", "STILLS", "--enroll-prefix", "A-"],
    "webcam dim": ["--data", "STILLS", "--enroll-prefix", "A-", "--dim"],
    "webcam grey": ["--data", "STILLS", "--enroll-prefix", "A-", "--gray"],
}
# label -> (owners, named, unknown, strangers, accepted; after the second look: named, unknown, accepted)
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "onnx": {"att": (996, 984, 8, 1994, 10, 988, 8, 12), "five_celebrity": (262, 232, 14, 498, 1, 246, 16, 1),
             "webcam": (579, 579, 0, 1425, 0, 579, 0, 0), "webcam dim": (579, 578, 0, 1425, 0, 579, 0, 0),
             "webcam grey": (579, 579, 0, 1425, 0, 579, 0, 0)},
    "torch": {"att": (996, 985, 3, 1994, 11, 990, 6, 14), "five_celebrity": (262, 231, 14, 498, 0, 245, 17, 0),
              "webcam": (579, 579, 0, 1425, 0, 579, 0, 0), "webcam dim": (579, 578, 0, 1425, 0, 579, 0, 0),
              "webcam grey": (579, 579, 0, 1425, 0, 579, 0, 0)},
}


def totals(lines: list[str]) -> tuple[int, ...]:
    """The summed counts of one --json run (one object per seed)."""
    sums = [0] * 8
    for line in lines:
        first = json.loads(line)
        final = first["after_second_look"]
        values = (first["owners"]["total"], first["owners"]["named"], first["owners"]["unknown"],
                  first["strangers"]["total"], first["strangers"]["accepted"],
                  final["owners"]["named"], final["owners"]["unknown"], final["strangers"]["accepted"])
        sums = [a + b for a, b in zip(sums, values)]
    return tuple(sums)


def test_every_set_at_the_daemons_decision(tmp_path, model_dirs, monkeypatch, capsys):
    """The AT&T, five_celebrity and webcam rows of README "Calibration", 10 seeds each: per-owner calibration
    against the shipped cohort (embedded here by this engine), T-norm, uncertain band and second look, exactly as
    the daemon decides."""
    from facewatch.cli import main

    need(DATA / "webcam")
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    stills = tmp_path / "stills"
    assert cut(stills, 12) == 264
    config = tmp_path / "config.yaml"
    config.write_text(f"engine: {ENGINE}\n")
    found = {}
    for label, args in RUNS.items():
        args = [str(stills) if a == "STILLS" else a for a in args]
        assert main(["--config", str(config), "eval", "identify", "--cache", str(CACHE), "--seeds", "10", "--json",
                     *args]) == 0
        found[label] = totals(capsys.readouterr().out.splitlines())
    print(json.dumps(found))
    assert found == EXPECTED[ENGINE]
