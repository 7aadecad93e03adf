"""Schemathesis hooks for the API fuzz run (tests/test_fuzz.py): bodies the API document
names by media type only (lines of JSON, CSV, plain text), as UTF-8 text. Bytes that are not
UTF-8 are refused with 400 (tests/inventory, tests/scrubber)."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import strategies as st

_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=200)
_LINE = st.dictionaries(
    st.sampled_from(["name", "email", "text", "external_ref", "systems"]), _TEXT
)

schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.lists(_LINE.map(json.dumps), max_size=5).map(lambda lines: "\n".join(lines).encode()),
)
schemathesis.openapi.media_type(
    "text/csv",
    st.lists(st.lists(_TEXT, min_size=1, max_size=4), max_size=5).map(
        lambda rows: ("name,email\n" + "\n".join(",".join(row) for row in rows)).encode()
    ),
)
schemathesis.openapi.media_type("text/plain", _TEXT.map(str.encode))
