"""The sub-processor register's HTML pages: `register` (the public list and the DPO's
register) and `account` (the account's sub-processor page and the public Atom feed)."""
