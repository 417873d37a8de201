"""What facewatch does to the desktop: lock the screen (lock), notify (notify), through a command runner (runner), or only record (dryrun)."""
