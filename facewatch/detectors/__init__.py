"""Detectors: YOLO person boxes (every frame) and MTCNN face boxes with landmarks (on triggers)."""
