"""The public Atom feed of sub-processor changes: valid Atom 1.0, newest first, every entry
carrying the notice (name, address, contact, purpose, data categories, locations and
safeguards), nothing about any customer account."""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET  # noqa: S405 - our own feed, in a test

import pytest

from privacy.extensions import db
from privacy.processors import services
from tests.processors import test_register as register_fixtures
from tests.processors.test_customer import activate_us
from tests.processors.test_register import make
from tests.processors.test_register import with_dpa

# The register's isolated storage, as a fixture of this module.
register = register_fixtures.register

NS = {"atom": "http://www.w3.org/2005/Atom"}


def parse(response) -> ET.Element:
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    root = ET.fromstring(response.data)  # noqa: S314 - our own feed, in a test
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    return root


def one(element: ET.Element, path: str) -> ET.Element:
    found = element.findall(path, NS)
    assert len(found) == 1, path
    return found[0]


def rfc3339(text: str) -> datetime:
    assert text.endswith("Z") and "T" in text, text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_feed_metadata(root: ET.Element, base_url: str) -> None:
    """What RFC 4287 requires of a feed: id, title, updated, author; plus its self link."""
    assert one(root, "atom:id").text.startswith("urn:uuid:")
    assert one(root, "atom:title").text == "Sub-processor changes"
    rfc3339(one(root, "atom:updated").text)
    assert one(root, "atom:author/atom:name").text
    links = {link.get("rel"): link for link in root.findall("atom:link", NS)}
    assert links["self"].get("href") == f"{base_url}/subprocessors/feed"
    assert links["self"].get("type") == "application/atom+xml"
    assert links["alternate"].get("href") == f"{base_url}/subprocessors"


def fragment(entry: ET.Element) -> ET.Element:
    """The entry's HTML content, parsed (it is well-formed: every value is escaped)."""
    content = one(entry, "atom:content")
    assert content.get("type") == "html"
    return ET.fromstring(f"<div>{content.text}</div>")  # noqa: S314 - our own HTML


def fields(html: ET.Element) -> dict[str, str]:
    terms = [dt.text for dt in html.iter("dt")]
    values = [dd.text for dd in html.iter("dd")]
    return dict(zip(terms, values, strict=True))


def test_an_empty_register_gives_a_valid_feed_without_entries(app, client, register):
    root = parse(client.get("/subprocessors/feed"))
    check_feed_metadata(root, app.config["BASE_URL"].rstrip("/"))
    assert root.findall("atom:entry", NS) == []


def test_every_change_is_an_entry_newest_first_with_its_notice(
    app,
    client,
    tenant,
    register,
):
    first, v1 = activate_us("Müller & <Söhne> Inc.")
    replacement = with_dpa(make(["DE", "NO"], legal_name="Hébergement GmbH", website=None))
    v2 = services.activate(replacement, actor="operator:dpo", replaces=first)
    db.session.commit()
    v3 = services.retire(replacement, actor="operator:dpo")
    db.session.commit()

    response = client.get("/subprocessors/feed")  # no session, no token
    root = parse(response)
    base_url = app.config["BASE_URL"].rstrip("/")
    check_feed_metadata(root, base_url)
    entries = root.findall("atom:entry", NS)
    assert len(entries) == 3
    assert rfc3339(one(root, "atom:updated").text) == v3.announced_at.replace(microsecond=0)

    titles = [one(e, "atom:title").text for e in entries]
    assert titles == [
        "List version 3: Hébergement GmbH removed",
        "List version 2: Hébergement GmbH replaces Müller & <Söhne> Inc.",
        "List version 1: Müller & <Söhne> Inc. added",
    ]
    ids = [one(e, "atom:id").text for e in entries]
    assert len(set(ids)) == 3 and all(i.startswith("urn:uuid:") for i in ids)
    for entry, version in zip(entries, (v3, v2, v1), strict=True):
        assert rfc3339(one(entry, "atom:updated").text) == version.announced_at.replace(
            microsecond=0
        )
        assert one(entry, "atom:link").get("href") == f"{base_url}/subprocessors"
        assert one(entry, "atom:category").get("term") == version.change

    added = fragment(entries[2])
    assert fields(added) == {
        "Change": "added",
        "Name": "Müller & <Söhne> Inc.",
        "Address": "Musterstraße 1, 10115 Berlin, Germany",
        "Contact": "privacy@hosting.example",
        "Purpose": "hosting and storage",
        "Categories of data": "contact data",
        "Categories of data subjects": "customers' users",
        "Services": "hosting",
        "Announced": f"{v1.announced_at:%Y-%m-%d %H:%M} UTC",
        "Takes effect": f"{v1.effective_at:%Y-%m-%d %H:%M} UTC",
    }
    assert [li.text for li in added.iter("li")] == [
        "United States (US): SCC module 3, Commission Implementing Decision (EU) 2021/914"
    ]
    replaced = fragment(entries[1])
    assert fields(replaced)["Replaces"] == "Müller & <Söhne> Inc."
    assert [li.text for li in replaced.iter("li")] == [
        "Germany (DE): within the EU/EEA",
        "Norway (NO): within the EU/EEA",
    ]
    assert "objection" in one(entries[1], "atom:summary").text or "object" in (
        one(entries[1], "atom:summary").text
    )
    assert "no longer processes" in one(entries[0], "atom:summary").text

    # The same ids on the next fetch: readers do not see old entries as new ones.
    again = parse(client.get("/subprocessors/feed")).findall("atom:entry/atom:id", NS)
    assert [i.text for i in again] == ids
    # A public feed: nothing about the customer accounts that were notified.
    assert tenant.account.name.encode() not in response.data
    assert str(tenant.account.public_id).encode() not in response.data


@pytest.mark.parametrize("path", ["/subprocessors/feed", "/api/v1/public/subprocessors"])
def test_the_public_views_need_no_sign_in(client, register, path):
    response = client.get(path)
    assert response.status_code == 200
