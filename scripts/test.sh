#!/usr/bin/env bash
# Sets up ./.venv (scripts/setup.sh) and runs the test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tray tests start their own virtual X server (Xvfb), tray hosts (trayer; xfce4-panel, which hosts
# StatusNotifierItems) and session bus (dbus-daemon); they skip without them.
# As root on Debian/Ubuntu (CI), install them; elsewhere say how, once.
if ! command -v Xvfb >/dev/null || ! command -v trayer >/dev/null || ! command -v dbus-daemon >/dev/null \
  || ! command -v xfce4-panel >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing xvfb, trayer, dbus-daemon and xfce4-panel for the tray tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb trayer dbus-daemon xfce4-panel \
      >/dev/null) || echo "test.sh: could not install xvfb/trayer/dbus-daemon/xfce4-panel; the tray tests will be skipped" >&2
  else
    echo "test.sh: the tray tests need xvfb, trayer, dbus-daemon and xfce4-panel (apt-get install xvfb trayer" \
      "dbus-daemon xfce4-panel); they will be skipped" >&2
  fi
fi
# The lock tests drive a real xscreensaver under Xvfb (as the user nobody when root: it will not lock for root).
if ! command -v xscreensaver-command >/dev/null || ! command -v dbus-daemon >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing xscreensaver and dbus for the lock tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      xvfb xscreensaver dbus >/dev/null) || echo "test.sh: could not install xscreensaver; the lock tests will be skipped" >&2
  else
    echo "test.sh: the lock tests need xscreensaver (apt-get install xscreensaver); they will be skipped" >&2
  fi
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure for this project, never a pass.
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
