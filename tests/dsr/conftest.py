"""Each request test gets its own object storage (packages, receipts, the erasure ledger)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def own_storage(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "STORAGE_URL", f"file://{tmp_path / 'storage'}")
    monkeypatch.delitem(app.extensions, "storage", raising=False)
    yield
    app.extensions.pop("storage", None)
