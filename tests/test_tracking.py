"""facewatch.tracking: box overlap, optimal assignment, the face-pass trigger and identity-carrying tracks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facewatch.detectors.base import Detection, Face
from facewatch.tracking import (
    CountTrigger,
    Tracker,
    assign,
    containment_matrix,
    iou_matrix,
)

# ---------------------------------------------------------------- iou.py


def test_iou_of_known_boxes():
    a = [[0, 0, 2, 2]]
    b = [[0, 0, 2, 2], [5, 5, 7, 7], [1, 0, 3, 2], [2, 0, 4, 2], [0.5, 0.5, 1.5, 1.5]]
    # identical, disjoint, half of each overlapping (2 / (4 + 4 - 2)), edges touching, nested 1x1 in 2x2
    np.testing.assert_allclose(iou_matrix(a, b), [[1, 0, 1 / 3, 0, 1 / 4]], rtol=1e-12)
    np.testing.assert_allclose(iou_matrix(b, a), iou_matrix(a, b).T, rtol=1e-12)


def test_containment_scores_a_face_inside_a_person():
    face, person = [[10, 10, 20, 20]], [[0, 0, 100, 300], [15, 0, 115, 300]]
    np.testing.assert_allclose(containment_matrix(face, person), [[1.0, 0.5]], rtol=1e-12)
    np.testing.assert_allclose(iou_matrix(face, person), [[100 / 30000, 50 / 30050]], rtol=1e-12)
    np.testing.assert_allclose(containment_matrix(person, face), [[100 / 30000], [50 / 30000]], rtol=1e-12)


def test_empty_and_zero_area_boxes():
    assert iou_matrix([], [[0, 0, 1, 1]]).shape == (0, 1)
    assert iou_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)
    assert containment_matrix([], []).shape == (0, 0)
    point = [[1, 1, 1, 1]]
    assert iou_matrix(point, point)[0, 0] == 0.0
    assert containment_matrix(point, [[0, 0, 2, 2]])[0, 0] == 0.0
    assert assign(np.zeros((0, 3)), 0.3) == []


def test_bad_box_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \(N, 4\).*\(4,\)"):
        iou_matrix([0, 0, 1, 1], [[0, 0, 1, 1]])


def test_assign_beats_greedy_on_a_crossing():
    # Greedy takes the best pair (0, 0) = 0.9 and leaves row 1 nothing; the optimum pairs both rows (0.8 + 0.7).
    score = np.array([[0.9, 0.8], [0.7, 0.0]])
    assert assign(score, 0.3) == [(0, 1), (1, 0)]


def test_assign_drops_low_pairs_without_letting_them_displace_good_ones():
    # Unmasked, (0, 1) + (1, 0) = 0.7 beats (0, 0) = 0.6, and then (1, 0) would be dropped, leaving 0.5.
    score = np.array([[0.6, 0.5], [0.2, 0.0]])
    assert assign(score, 0.3) == [(0, 0)]
    assert assign(score, 0.0) == [(0, 1), (1, 0)]
    assert assign(score, 0.7) == []


def test_assign_rectangular():
    score = np.array([[0.1, 0.9], [0.8, 0.85], [0.5, 0.2]])
    assert assign(score, 0.3) == [(0, 1), (1, 0)]
    assert assign(score.T, 0.3) == [(0, 1), (1, 0)]


def test_assign_is_optimal_against_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(300):
        rows, cols = (int(n) for n in rng.integers(1, 6, size=2))
        score = rng.integers(0, 5, size=(rows, cols)) / 4  # ties on purpose
        k = min(rows, cols)
        best = max(
            sum(score[r, c] for r, c in zip(rs, cs))
            for rs in itertools.combinations(range(rows), k)
            for cs in itertools.permutations(range(cols), k)
        )
        pairs = assign(score, 0.0)
        assert len(pairs) == min(rows, cols)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        assert sum(score[r, c] for r, c in pairs) == pytest.approx(best, abs=1e-12)


# ---------------------------------------------------------------- trigger.py


def run(trigger: CountTrigger, rows: list[tuple]) -> list[str | None]:
    """Feed (t, count[, request]) rows to the trigger; return the reason of each update."""
    out = []
    for t, count, *ask in rows:
        if ask and ask[0]:
            trigger.request(ask[0])
        out.append(trigger.update(count, t))
    return out


def check(trigger: CountTrigger, table: list[tuple]) -> None:
    """Each table row is (t, count, [request,] expected reason)."""
    assert run(trigger, [row[:-1] for row in table]) == [row[-1] for row in table]


def test_first_frame_waits_for_the_cooldown():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=0)
    assert trigger.confirmed_count is None and not trigger.pending
    check(trigger, [(0.0, 1, None), (0.5, 1, None), (1.0, 1, "count_change"), (1.5, 1, None), (9.0, 1, None)])
    assert trigger.confirmed_count == 1 and not trigger.pending


def test_change_fires_at_the_first_frame_held_for_the_cooldown():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=0)
    run(trigger, [(0.0, 1), (1.0, 1)])
    table = [
        (2.0, 2, None), (2.25, 2, None), (2.5, 2, None), (2.75, 2, None), (3.0, 2, "count_change"), (3.25, 2, None),
    ]
    pending = []
    for t, count, expected in table:
        assert trigger.update(count, t) == expected
        pending.append(trigger.pending)
    assert pending == [True, True, True, True, False, False]
    assert trigger.confirmed_count == 2


def test_one_frame_spike_never_fires():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=0)
    run(trigger, [(0.0, 1), (1.0, 1)])
    check(trigger, [
        (2.0, 2, None), (2.25, 1, None),  # one-frame spike
        (3.0, 0, None), (3.25, 1, None),  # one-frame drop-out
        (4.0, 2, None), (4.75, 2, None), (4.9, 1, None),  # held just under the cooldown
        (6.0, 1, None), (9.0, 1, None),
    ])
    assert trigger.confirmed_count == 1 and not trigger.pending


def test_flickering_new_count_still_fires_after_the_cooldown():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=0)
    run(trigger, [(0.0, 1), (1.0, 1)])
    check(trigger, [
        (2.0, 2, None), (2.5, 3, None),  # unlike the confirmed 1 since t=2.0, however it flickers
        (3.0, 2, "count_change"),  # held away from 1 for the cooldown: the latest count is confirmed
        (3.5, 3, None), (4.0, 2, None),  # the confirmed 2 comes back: that change is cancelled
        (4.5, 3, None), (5.0, 4, None), (5.5, 3, "count_change"),  # pending again since 4.5
    ])
    assert trigger.confirmed_count == 3


def test_drop_to_zero_confirms_without_a_face_pass():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=5.0)
    check(trigger, [
        (0.0, 2, None), (1.0, 2, "count_change"),
        (2.0, 0, None), (2.5, 0, None), (3.0, 0, None),  # everyone left: confirmed, no pass
        (20.0, 0, None),  # no recheck of an empty room
        (21.0, 1, None), (22.0, 1, "count_change"),
    ])
    assert trigger.confirmed_count == 1
    empty = CountTrigger(cooldown_s=1.0, recheck_s=5.0)
    check(empty, [(0.0, 0, None), (1.0, 0, None), (30.0, 0, None)])
    assert empty.confirmed_count == 0


def test_recheck_timing():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=10.0)
    check(trigger, [
        (0.0, 1, None), (1.0, 1, "count_change"),
        (5.0, 1, None), (10.75, 1, None), (11.0, 1, "recheck"),
        (15.0, 2, None), (16.0, 2, "count_change"),  # a count change pass restarts the recheck clock
        (21.0, 2, None), (25.75, 2, None), (26.0, 2, "recheck"),
    ])
    never = CountTrigger(cooldown_s=1.0, recheck_s=0)
    check(never, [(0.0, 1, None), (1.0, 1, "count_change"), (100.0, 1, None), (1000.0, 1, None)])


def test_recheck_still_runs_while_counts_flap():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=10.0)
    run(trigger, [(0.0, 1), (1.0, 1)])
    flapping = [(2.0 + 0.5 * i, 1 + i % 2) for i in range(20)]  # 1, 2, 1, 2, ... from t=2 to t=11.5
    reasons = run(trigger, flapping)
    assert [(t, r) for (t, _), r in zip(flapping, reasons) if r] == [(11.0, "recheck")]
    assert trigger.pending and trigger.confirmed_count == 1


def test_requests_from_the_tracker():
    trigger = CountTrigger(cooldown_s=1.0, recheck_s=0)
    check(trigger, [
        (0.0, 1, None, None),
        (1.0, 1, None, "count_change"),
        (1.5, 1, "unverified", None),  # the last pass was under cooldown_s ago
        (2.0, 1, None, None),  # an unserved request is dropped
        (2.5, 1, "track_moved", "track_moved"),
        (3.0, 1, "track_moved", None),  # again too soon after that pass
        (3.5, 2, "unverified", None),  # a change is pending: its own pass will serve the request
        (4.5, 2, "unverified", "count_change"),
        (5.5, 2, "unverified", "unverified"),
    ])


def test_zero_cooldown_fires_on_the_first_frame():
    trigger = CountTrigger(cooldown_s=0.0, recheck_s=0)
    check(trigger, [(0.0, 1, "count_change"), (0.5, 1, None), (1.0, 2, "count_change"), (1.5, 0, None)])


def test_negative_timings_are_rejected():
    with pytest.raises(ValueError, match="cooldown_s, recheck_s and retry_s must be >= 0"):
        CountTrigger(cooldown_s=-1.0, recheck_s=30.0)


# ---------------------------------------------------------------- tracks.py


def person(x1: float, y1: float, x2: float, y2: float) -> Detection:
    """A person box as the detector returns it."""
    return Detection(np.array([x1, y1, x2, y2], dtype=np.float32), 0.9)


def face(x1: float, y1: float, x2: float, y2: float) -> Face:
    """A face box as the face detector returns it."""
    return Face(np.array([x1, y1, x2, y2], dtype=np.float32), 0.99)


def tracker() -> Tracker:
    """A tracker with the config.yaml defaults."""
    return Tracker(match_iou=0.3, reverify_iou=0.2, max_missed_s=2.0)


def test_identity_follows_a_person_who_moves_a_bit():
    tr = tracker()
    (track,) = tr.update([person(100, 100, 200, 400)], 0.0)
    assert (track.id, track.identity, tr.identities(), tr.needs_reverify()) == (1, None, ["unverified"], True)
    tr.apply_faces([face(130, 120, 170, 170)], [("alice", 0.8)], 0.0)
    assert (track.identity, track.score, track.verified_at, tr.needs_reverify()) == ("alice", 0.8, 0.0, False)
    for step in range(1, 6):  # 10 px per frame; after 50 px IoU with the verified box is 1/3 >= 0.2
        (moved,) = tr.update([person(100 + 10 * step, 100, 200 + 10 * step, 400)], 0.5 * step)
        assert (moved.id, moved.identity, moved.last_seen) == (1, "alice", 0.5 * step)
    np.testing.assert_array_equal(moved.box, [150, 100, 250, 400])
    np.testing.assert_array_equal(moved.box_at_verify, [100, 100, 200, 400])
    assert tr.identities() == ["alice"] and not tr.needs_reverify()


def test_a_new_person_is_unverified():
    tr = tracker()
    tr.update([person(100, 100, 200, 400)], 0.0)
    tr.apply_faces([face(130, 120, 170, 170)], [("alice", 0.8)], 0.0)
    tracks = tr.update([person(400, 100, 500, 400), person(102, 100, 202, 400)], 0.5)
    assert [(t.id, t.identity) for t in tracks] == [(2, None), (1, "alice")]  # in the order of the boxes
    assert tr.identities() == ["unverified", "alice"] and tr.needs_reverify()


def test_a_missed_unverified_box_stops_asking_for_a_face_pass():
    tr = tracker()
    tr.update([person(100, 100, 200, 400)], 0.0)
    tr.apply_faces([face(130, 120, 170, 170)], [("alice", 0.8)], 0.0)
    tr.update([person(100, 100, 200, 400), person(400, 100, 500, 400)], 0.5)  # a one-frame false box
    assert tr.needs_reverify()
    tr.update([person(100, 100, 200, 400)], 1.0)  # the false box's track is kept for max_missed_s, not live
    assert tr.identities() == ["alice"] and not tr.needs_reverify()


def test_faces_go_to_the_person_box_that_holds_them():
    tr = tracker()
    left, right = tr.update([person(0, 0, 100, 300), person(90, 0, 190, 300)], 0.0)
    # The right face lies 1/8 inside the left box and wholly inside the right one; faces come in any order.
    faces = [face(95, 20, 135, 60), face(500, 20, 540, 60), face(20, 20, 60, 60)]
    tr.apply_faces(faces, [("bob", 0.7), ("carol", 0.9), (None, 0.1)], 1.0)
    assert (left.identity, left.score, right.identity, right.score) == ("unknown", 0.1, "bob", 0.7)
    assert tr.identities() == ["unknown", "bob"]  # carol's face lies in no person box: ignored


def test_a_face_mostly_outside_the_person_box_names_nobody():
    tr = tracker()
    tr.update([person(0, 0, 100, 300)], 0.0)
    tr.apply_faces([face(80, 20, 130, 60)], [("alice", 0.8)], 0.0)  # 2/5 inside < 1/2
    assert tr.identities() == ["unverified"]
    tr.apply_faces([face(70, 20, 110, 60)], [("alice", 0.8)], 0.0)  # 3/4 inside
    assert tr.identities() == ["alice"]


def test_a_track_without_a_face_keeps_its_identity():
    tr = tracker()
    tr.update([person(0, 0, 100, 300), person(200, 0, 300, 300)], 0.0)
    tr.apply_faces([face(20, 20, 60, 60)], [("alice", 0.8)], 0.0)
    tr.update([person(0, 0, 100, 300), person(200, 0, 300, 300)], 1.0)
    tr.apply_faces([], [], 1.0)  # both turned away
    assert tr.identities() == ["alice", "unverified"]
    tr.apply_faces([face(220, 20, 260, 60)], [(None, 0.2)], 1.0)
    assert tr.identities() == ["alice", "unknown"] and not tr.needs_reverify()


def test_a_track_is_dropped_after_max_missed_s():
    tr = tracker()
    tr.update([person(100, 100, 200, 400)], 0.0)
    tr.apply_faces([face(130, 120, 170, 170)], [("alice", 0.8)], 0.0)
    assert tr.update([], 1.0) == [] and tr.identities() == [] and not tr.needs_reverify()
    (back,) = tr.update([person(100, 100, 200, 400)], 2.0)  # missed exactly max_missed_s: still kept
    assert (back.id, back.identity) == (1, "alice")
    tr.update([], 3.0)
    (new,) = tr.update([person(100, 100, 200, 400)], 4.5)  # missed 2.5 s > max_missed_s: dropped
    assert (new.id, new.identity) == (2, None)


def test_large_movement_asks_for_reverification():
    tr = tracker()
    tr.update([person(100, 100, 200, 400)], 0.0)
    tr.apply_faces([face(130, 120, 170, 170)], [("alice", 0.8)], 0.0)
    needs = []
    for step in range(1, 5):  # 20 px per frame: IoU with the verified box 2/3, 3/7, 1/4, 1/9
        tr.update([person(100 + 20 * step, 100, 200 + 20 * step, 400)], 0.5 * step)
        needs.append(tr.needs_reverify())
    assert needs == [False, False, False, True]
    assert tr.identities() == ["alice"]  # the name stays until a face pass says otherwise
    tr.apply_faces([face(210, 120, 250, 170)], [("alice", 0.85)], 2.0)
    assert not tr.needs_reverify()


def test_faces_and_identities_must_pair_up():
    tr = tracker()
    tr.update([person(0, 0, 100, 300)], 0.0)
    with pytest.raises(ValueError, match="got 1 faces but 0 identities"):
        tr.apply_faces([face(20, 20, 60, 60)], [], 0.0)
