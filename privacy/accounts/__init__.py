"""Accounts (tenants), their members and API tokens."""
