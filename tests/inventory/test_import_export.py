"""Bulk import (CSV, JSON lines; all or nothing with a per-row report) and export."""

from __future__ import annotations

import csv
import io
import json
import uuid

from sqlalchemy import func
from sqlalchemy import select

from privacy.database import utcnow
from privacy.extensions import db
from privacy.inventory import services
from privacy.inventory import tasks
from privacy.inventory.models import Holding
from privacy.inventory.models import StagedHolding
from privacy.inventory.models import StagedSubject
from privacy.inventory.models import Subject
from privacy.inventory.schemas import SubjectCreateSchema
from privacy.inventory.services import validate_import_row
from workers import schedule


def count_subjects() -> int:
    return db.session.scalar(select(func.count()).select_from(Subject))


def post_import(client, tenant, body: str | bytes, content_type: str):
    return client.post(
        "/api/v1/subjects/import", data=body, content_type=content_type, headers=tenant.headers
    )


def test_csv_import_creates_subjects_with_holdings(client, tenant):
    crm = client.post(
        "/api/v1/systems",
        json={"name": "CRM", "kind": "crm", "region": "eu"},
        headers=tenant.headers,
    ).json
    body = (
        "name,email,external_ref,source,systems\n"
        "Ana Lima,ana@example.org,c-1,import,CRM\n"
        '"Lee, Bo",BO@example.org,,import,\n'
        "李小龙,lee@example.cn,c-3,,CRM\n"
    )
    response = post_import(client, tenant, body, "text/csv")
    assert response.status_code == 201, response.json
    assert response.json["imported"] == 3
    assert count_subjects() == 3
    assert db.session.scalar(select(func.count()).select_from(Holding)) == 2
    found = client.post(
        "/api/v1/subjects/lookup", json={"email": "bo@example.org"}, headers=tenant.headers
    ).json
    assert found["name"] == "Lee, Bo"
    lee = client.post(
        "/api/v1/subjects/lookup", json={"email": "lee@example.cn"}, headers=tenant.headers
    ).json
    assert lee["name"] == "李小龙"
    assert lee["systems"] == [crm["id"]]


def test_jsonl_import(client, tenant):
    lines = [json.dumps({"name": f"User {i}", "email": f"u{i}@example.org"}) for i in range(5)]
    response = post_import(client, tenant, "\n".join(lines) + "\n", "application/x-ndjson")
    assert response.status_code == 201
    assert response.json["imported"] == 5


def test_one_bad_row_rejects_the_whole_upload_with_a_report(client, tenant):
    body = (
        "name,email\n"
        "Good One,good@example.org\n"
        ",empty-name@example.org\n"
        "Bad Mail,not-an-email\n"
        "Good Two,good2@example.org\n"
    )
    response = post_import(client, tenant, body, "text/csv")
    assert response.status_code == 422
    rows = response.json["errors"]["rows"]
    assert [(r["line"], sorted(r["errors"])) for r in rows] == [(3, ["name"]), (4, ["email"])]
    assert count_subjects() == 0


def test_duplicates_within_upload_and_against_account_are_409(client, tenant):
    client.post(
        "/api/v1/subjects", json={"name": "Old", "email": "old@example.org"}, headers=tenant.headers
    )
    body = "name,email\nA,a@example.org\nOld Again,OLD@example.org\nA Again,a@example.org\n"
    response = post_import(client, tenant, body, "text/csv")
    assert response.status_code == 409
    assert [r["line"] for r in response.json["errors"]["rows"]] == [3, 4]
    assert count_subjects() == 1


def test_jsonl_bad_lines_and_unknown_fields_are_reported(client, tenant):
    body = (
        '{"name": "A", "email": "a@example.org"}\nnot json\n[1]\n'
        '{"name": "B", "email": "b@example.org", "ssn": "x"}\n'
    )
    response = post_import(client, tenant, body, "application/x-ndjson")
    assert response.status_code == 422
    rows = {r["line"]: r["errors"] for r in response.json["errors"]["rows"]}
    assert set(rows) == {2, 3, 4}
    assert "ssn" in rows[4]


def test_unknown_system_in_import_is_reported(client, tenant):
    response = post_import(client, tenant, "name,email,systems\nA,a@example.org,Nope\n", "text/csv")
    assert response.status_code == 422
    assert response.json["errors"]["rows"][0]["errors"] == {"systems": ["Unknown system."]}


def test_import_upload_errors_are_400(client, tenant):
    assert post_import(client, tenant, "name,email\n", "application/pdf").status_code == 400
    assert post_import(client, tenant, "bogus,columns\nx,y\n", "text/csv").status_code == 400
    assert post_import(client, tenant, b"name,email\n\xff\xfe,x\n", "text/csv").status_code == 400
    assert post_import(client, tenant, "", "text/csv").status_code == 400


def test_import_with_no_rows_is_422(client, tenant):
    assert post_import(client, tenant, "name,email\n", "text/csv").status_code == 422


def test_import_over_row_limit_is_413(app, client, tenant):
    limit = app.config["MAX_IMPORT_ROWS"]
    app.config["MAX_IMPORT_ROWS"] = 3
    try:
        body = "name,email\n" + "".join(f"N{i},n{i}@example.org\n" for i in range(4))
        response = post_import(client, tenant, body, "text/csv")
    finally:
        app.config["MAX_IMPORT_ROWS"] = limit
    assert response.status_code == 413
    assert count_subjects() == 0


def test_import_over_byte_limit_is_413(app, client, tenant):
    limit = app.config["MAX_IMPORT_BYTES"]
    app.config["MAX_IMPORT_BYTES"] = 100
    try:
        body = "name,email\n" + "".join(f"N{i},n{i}@example.org\n" for i in range(20))
        response = post_import(client, tenant, body, "text/csv")
    finally:
        app.config["MAX_IMPORT_BYTES"] = limit
    assert response.status_code == 413
    assert response.json["code"] == 413
    assert count_subjects() == 0


def test_export_jsonl_and_csv_round_trip(client, tenant, other_tenant):
    body = "name,email,external_ref\nAna Lima,ana@example.org,c-1\nBo Lee,bo@example.org,\n"
    assert post_import(client, tenant, body, "text/csv").status_code == 201
    jsonl = client.get("/api/v1/subjects/export", headers=tenant.headers)
    assert jsonl.status_code == 200
    rows = [json.loads(line) for line in jsonl.get_data(as_text=True).splitlines()]
    assert sorted((r["name"], r["email"]) for r in rows) == [
        ("Ana Lima", "ana@example.org"),
        ("Bo Lee", "bo@example.org"),
    ]
    exported = client.get(
        "/api/v1/subjects/export",
        query_string={"format": "csv"},
        headers={**tenant.headers, "X-Request-ID": "export-csv-1"},
    )
    assert exported.mimetype == "text/csv"
    reader = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {r["email"] for r in reader} == {"ana@example.org", "bo@example.org"}
    # Both exports import again into another account as they are.
    for content, content_type in (
        (exported.get_data(), "text/csv"),
        (jsonl.get_data(), "application/x-ndjson"),
    ):
        again = post_import(client, other_tenant, content, content_type)
        assert again.status_code in (201, 409), again.json
    assert count_subjects() == 4
    audit = client.get(
        "/api/v1/audit", query_string={"action": "subjects.exported"}, headers=tenant.headers
    ).json
    assert [e["data"] for e in audit["items"]] == [
        {"format": "csv", "count": 2, "complete": True},
        {"format": "jsonl", "count": 2, "complete": True},
    ]
    # Written after the view returned, still under the request's id.
    assert audit["items"][0]["request_id"] == "export-csv-1"


def test_an_export_the_client_stops_reading_is_audited_as_it_was_sent(client, tenant):
    rows = "".join(f"Person {n},p{n}@example.org,\n" for n in range(1200))
    assert post_import(client, tenant, "name,email,external_ref\n" + rows, "text/csv").status_code
    response = client.get("/api/v1/subjects/export", headers=tenant.headers, buffered=False)
    first = next(iter(response.response))
    response.close()  # the client went away after the first 500 lines

    assert first.count(b"\n") == 500
    audit = client.get(
        "/api/v1/audit", query_string={"action": "subjects.exported"}, headers=tenant.headers
    ).json
    assert [e["data"] for e in audit["items"]] == [
        {"format": "jsonl", "count": 500, "complete": False}
    ]


def test_export_bad_format_is_422(client, tenant):
    response = client.get(
        "/api/v1/subjects/export", query_string={"format": "xml"}, headers=tenant.headers
    )
    assert response.status_code == 422


ROWS = [
    {"name": "Ana", "email": "ana@example.org"},
    {
        "name": "Ana",
        "email": "ana@example.org",
        "external_ref": "r",
        "source": "s",
        "systems": ["CRM"],
    },
    {"name": "", "email": "ana@example.org"},
    {"name": "   ", "email": "ana@example.org"},
    {"name": "x" * 201, "email": "ana@example.org"},
    {"name": "Ana", "email": "nope"},
    {"name": "Ana"},
    {"email": "ana@example.org"},
    {"name": None, "email": "ana@example.org"},
    {"name": 7, "email": "ana@example.org"},
    {"name": "Ana", "email": 7},
    {"name": "Ana", "email": "ana@example.org", "external_ref": ""},
    {"name": "Ana", "email": "ana@example.org", "external_ref": "r" * 201},
    {"name": "Ana", "email": "ana@example.org", "source": "s" * 101},
    {"name": "Ana", "email": "ana@example.org", "external_ref": None, "source": None},
    {"name": "Ana", "email": "ana@example.org", "external_ref": 5},
    {"name": "Ana", "email": "ana@example.org", "systems": "CRM"},
    {"name": "Ana", "email": "ana@example.org", "systems": ["x"] * 101},
    {"name": "Ana", "email": "ana@example.org", "ssn": "123"},
]


def test_import_row_rules_match_the_create_schema(app):
    import marshmallow as ma

    schema = SubjectCreateSchema()
    for row in ROWS:
        # The schema names systems by UUID; imports by name too. Compare the other rules.
        as_schema = (
            {**row, "systems": [str(uuid.uuid4()) for _ in row["systems"]]}
            if (isinstance(row.get("systems"), list))
            else row
        )
        try:
            schema.load(as_schema)
            schema_fields = set()
        except ma.ValidationError as exc:
            schema_fields = set(exc.messages)
        data, errors = validate_import_row(row)
        assert set(errors) == schema_fields, row
        if not errors:
            assert data["email"] == schema.load(as_schema)["email"]


def test_a_row_that_duplicates_an_existing_subject_is_409(client, tenant):
    assert post_import(client, tenant, "name,email\nAna,ana@example.org\n", "text/csv").status_code
    again = post_import(client, tenant, "name,email\nAna Again,ANA@example.org\n", "text/csv")

    assert again.status_code == 409
    assert again.json["errors"]["rows"] == [
        {
            "line": 2,
            "errors": {"email": ["A subject with this e-mail already exists in the account."]},
        }
    ]


def test_an_e_mail_added_meanwhile_makes_the_import_409_and_leaves_nothing(
    client, tenant, monkeypatch
):
    """Another request adds one of the addresses between the check and the insert."""

    real_insert = services.bulk_insert

    def someone_else_first(table, rows, **kwargs):
        if table.name == "subjects":
            services.create_subject(tenant.account, name="Racer", email="bo@example.org", actor="t")
        return real_insert(table, rows, **kwargs)

    monkeypatch.setattr(services, "bulk_insert", someone_else_first)
    body = "name,email\nAna,ana@example.org\nBo,bo@example.org\n"
    response = post_import(client, tenant, body, "text/csv")

    assert response.status_code == 409
    assert "nothing was imported" in response.json["message"]
    assert count_subjects() == 0


def test_the_export_names_systems_so_it_imports_into_another_account(client, tenant, other_tenant):
    for owner in (tenant, other_tenant):
        assert (
            client.post(
                "/api/v1/systems",
                json={"name": "CRM", "kind": "crm", "region": "eu"},
                headers=owner.headers,
            ).status_code
            == 201
        )
    body = "name,email,systems\nAna Lima,ana@example.org,CRM\n"
    assert post_import(client, tenant, body, "text/csv").status_code == 201
    exported = client.get("/api/v1/subjects/export", headers=tenant.headers).get_data()
    assert json.loads(exported)["systems"] == ["CRM"]

    moved = post_import(client, other_tenant, exported, "application/x-ndjson")
    assert moved.status_code == 201, moved.json
    (row,) = client.get("/api/v1/subjects", headers=other_tenant.headers).json["items"]
    theirs = client.get("/api/v1/systems", headers=other_tenant.headers).json["items"][0]
    assert row["systems"] == [theirs["id"]]


# -- imports written in chunks (SQLite stages them, then publishes at once) ----------------


def staged_rows() -> int:

    return sum(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (StagedSubject, StagedHolding)
    )


def test_an_import_written_in_chunks_publishes_every_row_once(client, tenant, monkeypatch):
    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    crm = client.post(
        "/api/v1/systems",
        json={"name": "CRM", "kind": "crm", "region": "eu"},
        headers=tenant.headers,
    ).json
    rows = "".join(
        f"Person {n},p{n}@example.org,c-{n},{'CRM' if n % 2 else ''}\n" for n in range(7)
    )
    response = post_import(client, tenant, "name,email,external_ref,systems\n" + rows, "text/csv")

    assert response.status_code == 201 and response.json["imported"] == 7
    items = client.get("/api/v1/subjects", headers=tenant.headers).json["items"]
    assert [(i["email"], i["external_ref"], i["systems"]) for i in items] == [
        (f"p{n}@example.org", f"c-{n}", [crm["id"]] if n % 2 else []) for n in range(7)
    ]
    assert staged_rows() == 0
    audit = client.get(
        "/api/v1/audit", query_string={"action": "subjects.imported"}, headers=tenant.headers
    ).json["items"]
    assert [e["data"] for e in audit] == [{"count": 7}]


def test_a_chunked_import_that_meets_an_e_mail_added_meanwhile_leaves_nothing(
    client, tenant, monkeypatch
):
    """Someone adds one of the addresses while the chunks are written: 409, and none of the
    import's rows stays, staged or published."""

    monkeypatch.setattr(services, "IMPORT_CHUNK", 1)
    real_insert = services.bulk_insert
    raced = []

    def someone_else_meanwhile(table, rows, **kwargs):
        if table.name in ("subjects", "staged_subjects") and not raced:
            raced.append(
                services.create_subject(tenant.account, name="Racer", email="c@x.org", actor="t")
            )
        return real_insert(table, rows, **kwargs)

    monkeypatch.setattr(services, "bulk_insert", someone_else_meanwhile)
    body = "name,email\nAna,ana@example.org\nBo,bo@example.org\nCy,c@x.org\n"
    response = post_import(client, tenant, body, "text/csv")

    assert response.status_code == 409
    assert "nothing was imported" in response.json["message"]
    emails = {
        i["email"] for i in client.get("/api/v1/subjects", headers=tenant.headers).json["items"]
    }
    assert emails <= {"c@x.org"}  # the racer's own row, if its transaction was its own
    assert staged_rows() == 0


def test_staged_rows_left_by_a_dead_import_are_purged(app, tenant):
    def stage(import_id, age):
        db.session.add(
            StagedSubject(
                account_id=tenant.account.id,
                import_id=import_id,
                public_id=uuid.uuid4(),
                name_ct=b"x",
                email_ct=b"x",
                key_id="t1",
                email_index=uuid.uuid4().hex,
                email_hash_index=uuid.uuid4().hex,
                created_at=utcnow() - age,
            )
        )

    stage(uuid.uuid4(), services.STAGED_MAX_AGE * 2)  # its process died long ago
    running = uuid.uuid4()
    stage(running, services.STAGED_MAX_AGE / 10)  # an import still running
    db.session.commit()

    assert tasks.purge_staged() == 1
    assert db.session.scalars(select(StagedSubject.import_id)).all() == [running]
    assert "inventory.purge_staged" in app.extensions["celery"].tasks
    assert [e for e in schedule.BEAT_SCHEDULE.values() if e["task"] == "inventory.purge_staged"]
