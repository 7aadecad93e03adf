"""Encrypted daily backups to object storage, retention, restore with erasure replay, drills."""
