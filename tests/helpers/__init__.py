"""Helpers shared by the tests: where ../shared is, stand-ins for the daemon's parts, clips and replays."""
