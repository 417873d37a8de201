"""The operating system around the daemon: login autostart and the single-instance lock."""
