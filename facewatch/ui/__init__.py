"""What the user sees: the tray icon, the --show preview window and the run console."""
