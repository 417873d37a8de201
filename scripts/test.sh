#!/usr/bin/env bash
# Sets up both installs and runs the test suite in each: the light one (.venv, no torch: torch tests skip, each
# saying why) and the torch one (.venv-torch). Extra arguments go to both pytest runs.
# FACEWATCH_TEST_VENVS="light" (or "torch") runs one of them only.
set -euo pipefail
cd "$(dirname "$0")/.."
venvs=${FACEWATCH_TEST_VENVS:-"light torch"}
# The desktop tests start real parts themselves and skip, each saying why, without them: a virtual X server
# (Xvfb), tray hosts (trayer; xfce4-panel, which hosts StatusNotifierItems), a session bus (dbus-daemon) and
# xscreensaver (run as the user nobody when root: it will not lock for root).
# As root on Debian/Ubuntu (CI), install them; elsewhere say how, once.
tray="xvfb trayer dbus-daemon xfce4-panel"  # as the tray tests were checked: with apt's recommends
locker="xscreensaver dbus"  # as the lock tests were checked: without them
desktop="$tray $locker"
if ! command -v Xvfb >/dev/null || ! command -v trayer >/dev/null || ! command -v dbus-daemon >/dev/null \
  || ! command -v xfce4-panel >/dev/null || ! command -v xscreensaver-command >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing $desktop for the desktop tests"
    # shellcheck disable=SC2086  # one word per package
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tray >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $locker >/dev/null) \
      || echo "test.sh: could not install $desktop; the desktop tests will be skipped" >&2
  else
    echo "test.sh: the desktop tests need: apt-get install $desktop; they will be skipped" >&2
  fi
fi

failed=""
for flavour in $venvs; do
  case "$flavour" in
    light) bash scripts/setup.sh; python=.venv/bin/python ;;
    torch) bash scripts/setup.sh --torch; python=.venv-torch/bin/python ;;
    *) echo "test.sh: unknown venv '$flavour' in FACEWATCH_TEST_VENVS (light, torch)" >&2; exit 2 ;;
  esac
  echo "test.sh: running the suite in the $flavour install ($python)"
  set +e
  "$python" -m pytest "$@"
  rc=$?
  set -e
  # pytest exits 5 when it collected no tests: that is a failure for this project, never a pass.
  if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests in the $flavour install" >&2
  fi
  [ "$rc" -eq 0 ] || failed="$failed $flavour(exit $rc)"
  # The type check runs once, in the torch install: there torch, ultralytics and numpy give their real types.
  if [ "$flavour" = torch ]; then
    echo "test.sh: type-checking the package (mypy facewatch)"
    "$python" -m mypy facewatch || failed="$failed mypy"
  fi
done
if [ -n "$failed" ]; then
  echo "test.sh: the suite failed in:$failed" >&2
  exit 1
fi
