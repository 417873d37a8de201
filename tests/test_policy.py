"""LockPolicy rules on scripted update sequences, and PolicyRunner acting on them through the dry-run recorder."""

from __future__ import annotations

import json
import stat
from dataclasses import replace

from facewatch.actions.dryrun import DryRunRecorder, Recorded
from facewatch.actions.lock import ChainLocker
from facewatch.config import Policy, load_config
from facewatch.events import EventLog
from facewatch.policy import LOCK_FAILED_TITLE, Decision, LockPolicy, PolicyRunner

BASE = Policy(unknown_seconds=1.0, away_seconds=0, onlooker="notify", grace_seconds=10.0, camera_lost="notify")
STRANGER = ["unknown"]
ONLOOKER = ["alice", "unknown"]
LOST = "lost"  # a script row's identities: the camera is lost
PAUSED = "paused"  # a script row's identities: the daemon is paused


def steps(start: float, stop: float, ids, step: float = 0.5) -> list[tuple[float, object]]:
    """Rows (t, ids) every `step` s from start to stop inclusive (binary-exact times)."""
    count = round((stop - start) / step)
    return [(start + i * step, ids) for i in range(count + 1)]


def play(script, policy: LockPolicy | None = None, **settings) -> list[tuple[str, str, float]]:
    """Feed (t, ids | LOST | PAUSED) rows to a policy; return every decision as (action, reason, at)."""
    policy = policy or LockPolicy(replace(BASE, **settings))
    out = []
    for t, ids in script:
        camera_ok, paused = ids != LOST, ids == PAUSED
        identities = [] if ids in (LOST, PAUSED) else list(ids)
        out += [(d.action, d.reason, d.at) for d in policy.update(t, identities, camera_ok, paused)]
    return out


# ------------------------------------------------------------------------------------------- stranger rule


def test_unknown_face_held_for_unknown_seconds_locks_once_then_grace():
    assert play(steps(0, 5, STRANGER)) == [("lock", "unknown face for 1.0 s", 1.0)]


def test_one_frame_spike_does_not_lock_and_resets_the_timer():
    script = [(0.0, STRANGER), (0.5, []), (1.0, STRANGER), (1.5, STRANGER), (2.0, STRANGER)]
    assert play(script) == [("lock", "unknown face for 1.0 s", 2.0)]
    # A frame where the stranger's track is merely unverified also breaks the run: it shows no unknown.
    script = [(0.0, STRANGER), (0.5, ["unverified"]), (1.0, STRANGER), (1.5, STRANGER)]
    assert play(script) == []


def test_the_stranger_run_counts_from_when_their_track_appeared():
    policy = LockPolicy(BASE)
    # The person appeared at 0.0; the face pass named them unknown at 1.0 (after the count cooldown).
    assert policy.update(0.5, ["unverified"], True, False) == []
    decisions = policy.update(1.0, STRANGER, True, False, unknown_since=0.0)
    assert [(d.action, d.reason, d.at) for d in decisions] == [("lock", "unknown face for 1.0 s", 1.0)]
    # A track that appeared just now gets the full unknown_seconds.
    fresh = LockPolicy(BASE)
    assert fresh.update(2.0, STRANGER, True, False, unknown_since=1.75) == []
    assert [d.at for d in fresh.update(2.75, STRANGER, True, False, unknown_since=1.75)] == [2.75]


def test_unknown_seconds_zero_locks_on_the_first_unknown_frame():
    assert play([(0.0, []), (0.5, STRANGER)], unknown_seconds=0) == [("lock", "unknown face for 0.0 s", 0.5)]


def test_unknown_beside_an_unverified_person_still_locks():
    assert play(steps(0, 1, ["unverified", "unknown"])) == [("lock", "unknown face for 1.0 s", 1.0)]


def test_unverified_alone_never_locks_even_with_the_away_rule_on():
    assert play(steps(0, 120, ["unverified"]), away_seconds=30) == []
    assert play(steps(0, 120, ["unverified", "unverified"]), away_seconds=30, onlooker="lock") == []


# ------------------------------------------------------------------------------------------- grace period


def test_a_stranger_who_stays_is_locked_again_when_the_grace_ends():
    assert play(steps(0, 12, STRANGER)) == [
        ("lock", "unknown face for 1.0 s", 1.0),
        ("lock", "unknown face for 11.0 s", 11.0),
    ]


def test_unlocked_starts_a_grace_period():
    policy = LockPolicy(BASE)
    policy.unlocked(5.0)
    assert play(steps(5, 16, STRANGER), policy) == [("lock", "unknown face for 10.0 s", 15.0)]


def test_zero_grace_relocks_on_the_next_frame():
    assert play(steps(0, 2, STRANGER), grace_seconds=0) == [
        ("lock", "unknown face for 1.0 s", 1.0),
        ("lock", "unknown face for 1.5 s", 1.5),
        ("lock", "unknown face for 2.0 s", 2.0),
    ]


# ------------------------------------------------------------------------------------------- onlooker rule


def test_onlooker_notify_once_per_episode():
    script = steps(0, 5, ONLOOKER) + [(5.5, ["alice"])] + steps(6, 8, ONLOOKER)
    assert play(script) == [
        ("notify", "unknown face beside alice for 1.0 s", 1.0),
        ("notify", "unknown face beside alice for 1.0 s", 7.0),
    ]


def test_onlooker_spike_does_not_notify():
    script = [(0.0, ["alice"]), (0.5, ONLOOKER), (1.0, ["alice"]), (1.5, ONLOOKER), (2.0, ["alice"])]
    assert play(script) == []


def test_onlooker_lock_mode_locks_and_respects_grace():
    assert play(steps(0, 12, ["bob", "unknown", "alice"]), onlooker="lock") == [
        ("lock", "unknown face beside alice, bob for 1.0 s", 1.0),
        ("lock", "unknown face beside alice, bob for 11.0 s", 11.0),
    ]


def test_onlooker_off_does_nothing():
    assert play(steps(0, 30, ONLOOKER), onlooker="off") == []


def test_owner_leaving_hands_over_to_the_stranger_rule_with_a_fresh_timer():
    script = steps(0, 2, ONLOOKER) + steps(2.5, 4, STRANGER)
    assert play(script, onlooker="off") == [("lock", "unknown face for 1.0 s", 3.5)]
    assert play(script) == [
        ("notify", "unknown face beside alice for 1.0 s", 1.0),
        ("lock", "unknown face for 1.0 s", 3.5),
    ]


# ------------------------------------------------------------------------------------------- away rule


def test_away_off_never_locks():
    assert play(steps(0, 10, ["alice"]) + steps(10.5, 1000, [], step=5.5)) == []


def test_away_locks_once_then_rearms_when_the_owner_is_seen_again():
    script = steps(0, 10, ["alice"]) + steps(10.5, 99.5, []) + [(100.0, ["alice"])] + steps(100.5, 140, [])
    assert play(script, away_seconds=30) == [
        ("lock", "owner away for 30.0 s", 40.0),
        ("lock", "owner away for 30.0 s", 130.0),
    ]


def test_away_needs_an_owner_seen_or_an_unlock_first():
    assert play(steps(0, 100, []), away_seconds=30) == []
    policy = LockPolicy(replace(BASE, away_seconds=30))
    policy.unlocked(0.0)
    assert play(steps(0, 40, []), policy) == [("lock", "owner away for 30.0 s", 30.0)]


def test_away_counts_while_only_an_unverified_person_is_in_view():
    """A person the face pass cannot name is not the owner: a hidden face must not keep the screen open."""
    script = [(0.0, ["alice"])] + steps(0.5, 31, ["unverified"])
    assert play(script, away_seconds=30) == [("lock", "owner away for 30.0 s", 30.0)]


def test_away_waits_for_the_grace_period():
    policy = LockPolicy(replace(BASE, away_seconds=5))
    play([(0.0, ["alice"])], policy)
    policy.unlocked(1.0)  # grace until 11; the away clock restarts at 1
    assert play(steps(1.5, 12, []), policy) == [("lock", "owner away for 10.0 s", 11.0)]


def test_a_stranger_lock_disarms_the_away_clock():
    script = [(0.0, ["alice"])] + steps(0.5, 1.5, STRANGER) + steps(2, 100, [])
    assert play(script, away_seconds=5) == [("lock", "unknown face for 1.0 s", 1.5)]


# ------------------------------------------------------------------------------------------- paused


def test_paused_decides_nothing_and_resets_timers_then_resume_grace():
    before = steps(0, 0.5, STRANGER) + steps(0.75, 5, PAUSED, step=0.25)
    # 0.5 s of stranger before the pause is forgotten; the resume at 5.5 starts a 10 s grace.
    assert play(before + steps(5.5, 16, STRANGER)) == [("lock", "unknown face for 10.0 s", 15.5)]
    assert play(before + steps(5.5, 6.5, STRANGER), grace_seconds=0) == [("lock", "unknown face for 1.0 s", 6.5)]


def test_pause_disarms_the_away_clock_and_ends_an_onlooker_episode():
    script = steps(0, 1, ONLOOKER) + [(1.5, PAUSED)] + steps(2, 100, [])
    assert play(script, away_seconds=5, grace_seconds=0) == [("notify", "unknown face beside alice for 1.0 s", 1.0)]
    script = steps(0, 1, ONLOOKER) + [(1.5, PAUSED)] + steps(2, 3, ONLOOKER)
    assert play(script, grace_seconds=0) == [
        ("notify", "unknown face beside alice for 1.0 s", 1.0),
        ("notify", "unknown face beside alice for 1.0 s", 3.0),
    ]


# ------------------------------------------------------------------------------------------- camera lost


def test_camera_lost_notify_once_per_episode():
    script = steps(0, 2, ["alice"]) + steps(3, 5, LOST, step=1) + steps(6, 6.5, ["alice"]) + [(7.0, LOST)]
    assert play(script) == [("notify", "camera lost", 3.0), ("notify", "camera lost", 7.0)]


def test_camera_lost_lock_once_per_episode():
    script = steps(0, 2, ["alice"]) + steps(3, 9, LOST, step=1) + [(10.0, ["alice"])] + steps(20, 22, LOST, step=1)
    assert play(script, camera_lost="lock") == [("lock", "camera lost", 3.0), ("lock", "camera lost", 20.0)]


def test_camera_lost_lock_waits_for_the_grace_period():
    script = steps(0, 1, STRANGER) + steps(2, 12, LOST, step=1)
    assert play(script, camera_lost="lock") == [
        ("lock", "unknown face for 1.0 s", 1.0),
        ("lock", "camera lost", 11.0),
    ]


def test_camera_loss_resets_the_stranger_timer():
    script = steps(0, 0.5, STRANGER) + [(0.75, LOST)] + steps(1, 2, STRANGER)
    assert play(script) == [("notify", "camera lost", 0.75), ("lock", "unknown face for 1.0 s", 2.0)]


def test_camera_loss_holds_the_away_clock_until_frames_return():
    script = steps(0, 10, ["alice"]) + steps(11, 100, LOST, step=1) + steps(101, 131, [], step=1)
    assert play(script, away_seconds=30) == [
        ("notify", "camera lost", 11.0),
        ("lock", "owner away for 30.0 s", 130.0),
    ]


def test_paused_wins_over_camera_lost():
    policy = LockPolicy(replace(BASE, camera_lost="lock"))
    assert policy.update(1.0, [], camera_ok=False, paused=True) == []


# ------------------------------------------------------------------------------------------- defaults


def test_packaged_defaults_drive_the_policy():
    policy = LockPolicy(load_config().policy)
    assert policy.update(0.0, ["unknown"], True, False) == []
    assert policy.update(1.0, ["unknown"], True, False) == [Decision("lock", "unknown face for 1.0 s", 1.0)]


# ------------------------------------------------------------------------------------------- runner


def _lines(path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in path.read_text().splitlines()]


def test_runner_locks_notifies_and_logs_each_decision(tmp_path):
    recorder = DryRunRecorder(clock=lambda: 1000.0)
    events = EventLog(tmp_path / "state" / "events.jsonl")
    runner = PolicyRunner(LockPolicy(BASE), recorder, recorder, events)
    written = []
    for t, ids in steps(0, 1, ONLOOKER) + steps(1.5, 2.5, STRANGER):
        written += [done.event for done in runner.update(t, ids, camera_ok=True, paused=False)]
    written.append(runner.unlocked(3.0))
    events.close()
    assert recorder.entries == [
        Recorded(1000.0, "notify", "facewatch: unknown face beside alice for 1.0 s"),
        Recorded(1000.0, "lock", "unknown face for 1.0 s"),
    ]
    expected = [
        {"event": "notify", "t": 1.0, "reason": "unknown face beside alice for 1.0 s"},
        {"event": "lock", "t": 2.5, "reason": "unknown face for 1.0 s", "ok": True, "method": "dry-run",
         "detail": "recorded; the screen was not locked"},
        {"event": "unlocked", "t": 3.0},
    ]
    assert _lines(events.path) == expected
    assert [{k: v for k, v in e.items() if k != "time"} for e in written] == expected
    assert stat.S_IMODE(events.path.stat().st_mode) == 0o600


def test_runner_tells_the_user_when_the_screen_could_not_be_locked(tmp_path):
    recorder = DryRunRecorder(clock=lambda: 5.0)
    events = EventLog(tmp_path / "events.jsonl")
    runner = PolicyRunner(LockPolicy(BASE), ChainLocker([], "install a locker"), recorder, events)
    for t, ids in steps(0, 1, STRANGER):
        runner.update(t, ids, camera_ok=True, paused=False)
    events.close()
    assert recorder.entries == [
        Recorded(5.0, "notify", f"{LOCK_FAILED_TITLE}: unknown face for 1.0 s: no screen-lock method found: "
                                "install a locker"),
    ]
    assert _lines(events.path) == [
        {"event": "lock", "t": 1.0, "reason": "unknown face for 1.0 s", "ok": False, "method": "none",
         "detail": "no screen-lock method found: install a locker"},
    ]

