"""Data-key rotation: re-encrypt every encrypted field under the newest key."""
