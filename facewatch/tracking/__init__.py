"""Pure tracking logic, no networks: box overlap and matching, the face-pass trigger, identity-carrying tracks."""

from facewatch.tracking.iou import assign, containment_matrix, iou_matrix
from facewatch.tracking.tracks import Track, Tracker
from facewatch.tracking.trigger import CountTrigger

__all__ = ["CountTrigger", "Track", "Tracker", "assign", "containment_matrix", "iou_matrix"]
