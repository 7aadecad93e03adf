"""Parsing of bulk-import uploads (CSV with a header, or JSON lines) into numbered rows."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from typing import IO

from privacy import validation

CSV_TYPES = {"text/csv", "application/csv"}
JSONL_TYPES = {
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
}
COLUMNS = ("name", "email", "external_ref", "source", "systems")
# Columns of our own export that an import skips, so an export imports again as it is.
EXPORT_ONLY = frozenset({"id", "created_at", "updated_at"})


class UploadError(ValueError):
    """The upload as a whole cannot be read (wrong type, no header, not UTF-8)."""


def rows(stream: IO[bytes], content_type: str) -> Iterator[tuple[int, dict | str]]:
    """Yield (line number, row dict) or (line number, error message) per data row."""
    text = codecs.getreader("utf-8-sig")(stream, errors="strict")
    try:
        if content_type in CSV_TYPES:
            yield from _csv_rows(text)
        elif content_type in JSONL_TYPES:
            yield from _jsonl_rows(text)
        else:
            raise UploadError("Send text/csv or application/x-ndjson.")
    except UnicodeDecodeError:
        raise UploadError("The upload is not valid UTF-8.") from None


def _csv_rows(text: IO[str]) -> Iterator[tuple[int, dict | str]]:
    reader = csv.reader(text)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise UploadError("The CSV upload is empty.") from None
    except csv.Error:
        raise UploadError("The CSV header cannot be read.") from None
    unknown = [h for h in header if h not in COLUMNS and h not in EXPORT_ONLY]
    if unknown or len(set(header)) != len(header):
        raise UploadError(f"CSV columns must be distinct names from: {', '.join(COLUMNS)}.")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, "This CSV line cannot be parsed."
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield reader.line_num, f"Expected {len(header)} values, got {len(values)}."
            continue
        row: dict = {}
        for key, value in zip(header, values, strict=True):
            value = value.strip()
            if key in EXPORT_ONLY:
                continue
            if key == "systems":
                row[key] = [part.strip() for part in value.split(";") if part.strip()]
            elif value or key in {"name", "email"}:
                row[key] = value
        yield reader.line_num, row


def _jsonl_rows(text: IO[str]) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            row = validation.load_json(line)
        except validation.UnsafeJson as exc:  # too deep, a lone surrogate or a NUL...
            yield number, f"This line is not acceptable JSON: {exc}."
            continue
        except json.JSONDecodeError:
            yield number, "This line is not valid JSON."
            continue
        if not isinstance(row, dict):
            yield number, "Each line must be a JSON object."
            continue
        for key in EXPORT_ONLY:
            row.pop(key, None)
        yield number, row
