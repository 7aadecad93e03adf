"""The sub-processor register's REST API: `register` (the public list and each account's
view, notices, objections, webhook) and `documents` (the account's DPA annex and record)."""
