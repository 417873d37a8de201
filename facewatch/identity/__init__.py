"""Who is in front of the camera: FaceNet embeddings, the face pipeline, matching, the gallery, enrollment, liveness."""
