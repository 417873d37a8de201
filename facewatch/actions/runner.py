"""Runs desktop commands as argument lists with a timeout, and quotes text for the tools that parse literals.

Every way a command can fail (exit status, timeout, OSError) becomes an error string, never an exception.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

# Upper bound on one lock/notify command; a hung D-Bus call must not stall the daemon.
COMMAND_TIMEOUT_S = 5.0

Which = Callable[[str], "str | None"]
Run = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class Outcome:
    """What one external command did: None error means exit status 0."""

    error: str | None
    output: str = ""


class CommandRunner:
    """Runs argument-list commands with a timeout and turns every way they can fail into an error string."""

    def __init__(self, run: Run, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_S) -> None:
        self._run = run
        self._env = env
        self._timeout = timeout

    def __call__(self, command: Sequence[str]) -> Outcome:
        """Run `command` (no shell) and return its stdout, or why it failed (exit status, timeout, OSError)."""
        try:
            proc = self._run(
                list(command),
                capture_output=True,
                text=True,
                timeout=self._timeout,
                env=dict(self._env),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(f"timed out after {self._timeout:g} s")
        except OSError as exc:
            return Outcome(f"could not start: {exc}")
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout or "").strip()
            return Outcome(f"exit status {proc.returncode}" + (f": {said}" if said else ""))
        return Outcome(None, proc.stdout or "")


def _backslash_quoted(text: str, quote: str) -> str:
    """`text` between `quote`s, with backslash, the quote, newline, CR and tab backslash-escaped.

    GVariant text format and AppleScript both read string literals with these C-style escapes.
    """
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"{quote}{escaped}{quote}"


def gvariant_string(text: str) -> str:
    """Quote `text` as a GVariant text-format string literal, the form gdbus parses its call arguments in."""
    return _backslash_quoted(text, "'")


def applescript_string(text: str) -> str:
    """Quote `text` as an AppleScript string literal, so no text can end the string and run as script."""
    return _backslash_quoted(text, '"')
