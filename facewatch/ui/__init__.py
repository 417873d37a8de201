"""What the user sees: the tray icon and the --show preview window."""
