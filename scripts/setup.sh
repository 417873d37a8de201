#!/usr/bin/env bash
# Creates a venv and installs facewatch into it.
#   bash scripts/setup.sh          the light runtime in .venv (ONNX Runtime, no torch; ~430 MB, ~15 s)
#   bash scripts/setup.sh --torch  the torch stack in .venv-torch (torch engine, exports, training; ~6 GB)
#   bash scripts/setup.sh --models the light runtime, then `facewatch models build` for this CPU; a person model
#                                  configured as an ultralytics .pt is exported once through the torch install
# Idempotent: re-running after a finished install only re-checks the stack (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
flavour=light
VENV=.venv
build=no
case "${1:-}" in
  --torch) flavour=torch; VENV=.venv-torch ;;
  --models) build=yes ;;
  "") ;;
  *) echo "setup: unknown option ${1}: use --torch or --models" >&2; exit 2 ;;
esac
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
stamp="$VENV/.facewatch-installed"
want=$( (cat pyproject.toml scripts/setup.sh; echo "$flavour") | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ "$flavour" = light ]; then
    echo "setup: installing facewatch (light runtime, no torch) into $VENV"
    $PIP install -q -e '.[test]'
  else
    echo "setup: installing facewatch with its torch stack into $VENV (first time: a few GB, ~2 min)"
    # The extra pins torch and torchvision as a pair, so the resolver cannot take a torch wheel that no
    # installable torchvision matches.
    $PIP install -q -e '.[torch,reference,test]'
    # facenet-pytorch (MTCNN and InceptionResnetV1 for the torch engine) declares pins on torch<2.3 and numpy<2
    # that it does not need; --no-deps keeps the stack as it is. An extra cannot say --no-deps, hence this line.
    $PIP install -q --no-deps facenet-pytorch==2.6.0
  fi
  echo "$want" > "$stamp"
fi

if [ "$flavour" = torch ]; then
  # The check that matters: torchvision's compiled ops load against this torch.
  "$VENV/bin/python" -m facewatch.build.stackcheck
fi

if [ "$build" = yes ]; then
  # The light install runs only ONNX graphs. ultralytics publishes its person models as .pt checkpoints, which
  # only the torch stack can export: that happens once, into the same model dir, then the light build times
  # every network on this CPU.
  # Prints the configured person model when it is a .pt whose ONNX export is not built yet.
  person=$("$VENV/bin/python" - <<'PY'
from facewatch.config import load_config, model_dirs
from facewatch.engine import needed_files
from facewatch.weights.registry import locate
config = load_config()
if config.person.model.lower().endswith(".pt") and locate(needed_files(config, "onnx")[-1], model_dirs(config)) is None:
    print(config.person.model)
PY
)
  if [ -n "$person" ]; then
    echo "setup: person.model $person is an ultralytics checkpoint: exporting it once with the torch install"
    bash scripts/setup.sh --torch
    .venv-torch/bin/facewatch models build
  fi
  "$VENV/bin/facewatch" models build
fi
