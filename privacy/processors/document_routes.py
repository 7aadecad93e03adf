"""The account's documents: the DPA annex (list of sub-processors) and the Art. 30(2)
record of processing, as PDF (and JSON for the record)."""

from __future__ import annotations

from flask_smorest import Blueprint

bp = Blueprint(
    "processor_documents",
    __name__,
    url_prefix="/api/v1",
    description="The account's DPA annex and Art. 30(2) record of processing.",
)
