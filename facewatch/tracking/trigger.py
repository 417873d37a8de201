"""When the expensive face pass runs: a person count that changed and held, a periodic recheck, or a request.

Rules, checked in this order on every update(count, now):
1. A count unlike the confirmed one starts a pending change; its timer runs while the count stays unlike the
   confirmed one, even if it varies (a flickering 2/3 after 1 is still a change, and must not starve the pass).
2. The confirmed count coming back cancels the pending change, so a one-frame spike never fires.
3. A change pending for >= cooldown_s confirms the latest count.
4. The first frame is a change from an unknown count (None), so it waits for the cooldown like any change.
5. Confirming a count > 0 fires "count_change"; confirming 0 ("everyone left") fires nothing.
6. request(reason) fires on the next update, unless a change is pending (its own pass will serve it) or the
   last face pass was under retry_s ago; an unserved request is dropped, so ask again every frame it holds.
7. While the confirmed count is > 0 and recheck_s > 0, "recheck" fires recheck_s after the last face pass.
8. request(reason, urgent=True) fires on the next update whatever rules 6 and 7 say, even while a change is
   pending (a change that confirms on that update fires "count_change" instead; the pass serves both): a name
   was just suspended or found uncertain, and every frame of waiting is a frame a stranger may sit in it.
Every returned reason means the caller runs a face pass now; the timers count from that moment.
"""

from __future__ import annotations


class CountTrigger:
    """State machine over per-frame person counts that says when to run a face pass, and why."""

    def __init__(self, cooldown_s: float, recheck_s: float, retry_s: float | None = None) -> None:
        """cooldown_s: how long a new count must hold; recheck_s: face pass period while people stay (0 = off);
        retry_s: least time between passes asked for by request() (default cooldown_s)."""
        retry_s = cooldown_s if retry_s is None else retry_s
        if cooldown_s < 0 or recheck_s < 0 or retry_s < 0:
            raise ValueError(
                f"cooldown_s, recheck_s and retry_s must be >= 0, got {cooldown_s}, {recheck_s} and {retry_s}"
            )
        self.cooldown_s = cooldown_s
        self.recheck_s = recheck_s
        self.retry_s = retry_s
        self.confirmed_count: int | None = None
        self._pending_count: int | None = None
        self._pending_since = 0.0
        self._last_pass: float | None = None
        self._request: str | None = None
        self._urgent = False

    @property
    def pending(self) -> bool:
        """True while a changed count waits out its cooldown (the capture loop raises its fps meanwhile)."""
        return self._pending_count is not None

    def request(self, reason: str, urgent: bool = False) -> None:
        """Ask for a face pass on the next update, e.g. "unverified" from the tracker (rule 6), or an urgent
        one, e.g. "appearance_changed" (rule 8)."""
        self._request, self._urgent = reason, urgent

    def update(self, count: int, now: float) -> str | None:
        """Feed one processed frame's person count at monotonic time `now`; return a reason to run a face pass."""
        requested, urgent, self._request, self._urgent = self._request, self._urgent, None, False
        if count == self.confirmed_count:
            self._pending_count = None
        else:
            if not self.pending:
                self._pending_since = now
            self._pending_count = count
        reason = None
        if self.pending and now - self._pending_since >= self.cooldown_s:
            self.confirmed_count, self._pending_count = count, None
            reason = "count_change" if count > 0 else None
        elif requested and (urgent or not self.pending and self._since_pass(now) >= self.retry_s):
            reason = requested
        elif self.confirmed_count and self.recheck_s > 0 and self._since_pass(now) >= self.recheck_s:
            reason = "recheck"
        if reason:
            self._last_pass = now
        return reason

    def _since_pass(self, now: float) -> float:
        """Seconds since the last face pass; infinite before the first one."""
        return float("inf") if self._last_pass is None else now - self._last_pass
