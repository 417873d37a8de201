"""Weight files: the registry (names, sha256, sources, model dirs) and ONNX Runtime sessions."""
