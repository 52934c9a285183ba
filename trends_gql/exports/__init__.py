"""Data out: export runs, and backups with their restore."""
