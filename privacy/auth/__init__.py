"""Authentication of API calls and the permission table every route declares."""
