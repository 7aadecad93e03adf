"""PII scrubber for logs, built on Presidio; importable without Flask or a database."""
