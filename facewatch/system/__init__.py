"""The operating system around the daemon: login autostart, the single-instance lock, stepping aside for other
apps that open the camera, and the input idle time."""
