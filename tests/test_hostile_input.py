"""Hostile input gets a 4xx in the one error shape and writes nothing, never a 500: JSON nested
a thousand deep, lone surrogates and NUL characters, huge integers, date-times at the edges of
the range, a PDF whose page tree is thousands deep, line breaks in a company's name; 405s say
what is allowed; gunicorn's own error log holds no query string."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import socket
import textwrap
from pathlib import Path

import marshmallow as ma
import pypdf
import pytest
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import table

from privacy.extensions import db
from privacy.processors import services
from privacy.processors.models import SubProcessor
from privacy.schemas import MAX_BIG_INTEGER
from privacy.schemas import DateTimeField
from tests import helpers
from tests import test_routes_contract as contract
from tests.auth import conftest as auth_fixtures
from tests.processors import test_customer as customer_fixtures
from tests.processors import test_dpo_pages as dpo_fixtures
from tests.processors import test_register as register_fixtures
from tests.processors.test_customer import PageBrowser
from tests.processors.test_dpo_pages import HTML
from tests.processors.test_dpo_pages import form
from tests.processors.test_dpo_pages import post
from tests.processors.test_dpo_pages import text
from tests.processors.test_register import make
from tests.test_routes_contract import assert_error_shape
from tests.test_routes_contract import json_write_routes

# Fixtures of the neighbouring tests, as fixtures of this module.
browser = auth_fixtures.browser
announced = customer_fixtures.announced
dpo = dpo_fixtures.dpo
register = register_fixtures.register
own_ids = contract.own_ids

EDGES = ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]
HUGE = 658837562933777268736


def row_counts() -> dict[str, int]:
    """Rows per table of the database as it is (committed or flushed in this session)."""
    names = [n for n in inspect(db.engine).get_table_names() if n != "alembic_version"]
    return {n: db.session.scalar(select(func.count()).select_from(table(n))) for n in names}


def send_everywhere(app, client, tenant, ids, body: str) -> list:
    """POST/PATCH/PUT `body` as JSON to every JSON write route; the answers."""
    answers = []
    for method, rule, url in json_write_routes(app, ids):
        response = client.open(
            url, method=method, data=body, headers=tenant.headers, content_type="application/json"
        )
        answers.append((rule, response))
    return answers


# -- the JSON body ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,reason",
    [
        ('{"name": ' + "[" * 1000 + "]" * 1000 + "}", "nests deeper than 32 levels"),
        ('{"name": ' + "[" * 40 + "]" * 40 + "}", "nests deeper than 32 levels"),
        ("[" * 1000 + "]" * 1000, "nests deeper than 32 levels"),
        ('{"name": "\\ud800", "reason": "x"}', "lone surrogate"),
        ('{"name": "A", "\\udfff": 1}', "lone surrogate"),
        ('{"name": "smile \\ud83d", "email": "a@example.org"}', "lone surrogate"),
        ('{"name": "a\\u0000b", "reason": "x", "text": "x"}', "NUL character"),
        ('{"name": NaN}', "NaN is not a JSON number"),
        ('{"name": -Infinity}', "-Infinity is not a JSON number"),
        ('{"list_version": ' + "9" * 5000 + "}", "too many digits"),
    ],
)
def test_json_that_would_break_deeper_in_is_400_everywhere(
    app, client, tenant, own_ids, body, reason
):
    before = row_counts()
    for rule, response in send_everywhere(app, client, tenant, own_ids, body):
        assert_error_shape(response, 400)
        assert reason in response.json["message"], (rule, response.json)
    assert row_counts() == before


def test_a_surrogate_pair_and_moderate_nesting_are_fine(client, tenant):
    created = client.post(
        "/api/v1/subjects",
        data='{"name": "Zoe \\ud83d\\ude00", "email": "zoe@example.org"}',
        headers=tenant.headers,
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json["name"] == "Zoe \U0001f600"
    nested = client.post(
        "/api/v1/tokens", json={"name": "n", "scopes": ["inventory"]}, headers=tenant.headers
    )
    assert nested.status_code == 201, nested.json


def test_a_json_lines_import_reports_such_lines_and_imports_nothing(client, tenant):
    body = "\n".join(
        [
            '{"name": "Ana", "email": "ana@example.org"}',
            '{"name": ' + "[" * 3000 + "]" * 3000 + ', "email": "b@example.org"}',
            '{"name": "C\\ud800", "email": "c@example.org"}',
            '{"name": "D", "email": "d@example.org", "source": "\\u0000"}',
        ]
    )
    before = row_counts()
    response = client.post(
        "/api/v1/subjects/import",
        data=body,
        content_type="application/x-ndjson",
        headers=tenant.headers,
    )
    assert_error_shape(response, 422)
    rows = {row["line"]: str(row["errors"]) for row in response.json["errors"]["rows"]}
    assert set(rows) == {2, 3, 4}
    assert "nests deeper than 32 levels" in rows[2]
    assert "lone surrogate" in rows[3] and "NUL character" in rows[4]
    assert row_counts() == before


def test_a_nul_in_the_query_string_is_400(client, tenant):
    before = row_counts()
    for url in ("/api/v1/subjects?external_ref=a%00b", "/api/v1/audit?action=%00"):
        response = client.get(url, headers=tenant.headers)
        assert_error_shape(response, 400)
        assert "NUL" in response.json["message"]
    assert row_counts() == before


# -- integers -----------------------------------------------------------------------------


def test_a_huge_list_version_is_422_not_an_overflow(client, tenant, announced):
    before = row_counts()
    response = client.post(
        "/api/v1/subprocessors/objections",
        data=f'{{"list_version": {HUGE}, "reason": "far too big"}}',
        headers=tenant.headers,
        content_type="application/json",
    )
    assert_error_shape(response, 422)
    assert "list_version" in response.json["errors"]["json"]
    assert row_counts() == before


def test_a_huge_list_version_on_the_page_is_422(app, tenant, announced):
    browser = PageBrowser(app, tenant.admin)
    before = row_counts()
    for path, data in (
        ("/account/subprocessors/objections", {"list_version": str(HUGE), "reason": "no"}),
        ("/account/subprocessors/notices/read", {"list_version": str(HUGE)}),
        ("/account/subprocessors/notices/read", {"list_version": "-1"}),
    ):
        refused = browser.post(path, data)
        assert refused.status_code == 422, (path, text(refused)[:300])
        assert "A list version number." in text(refused)
    assert row_counts() == before


@pytest.mark.parametrize("number", [HUGE, -1, MAX_BIG_INTEGER + 1])
def test_a_cursor_beyond_the_id_range_is_422(client, tenant, number):
    cursor = base64.urlsafe_b64encode(f"id:{number}".encode()).decode().rstrip("=")
    for url in ("/api/v1/subjects", "/api/v1/systems", "/api/v1/audit", "/api/v1/requests"):
        response = client.get(url, query_string={"cursor": cursor}, headers=tenant.headers)
        assert_error_shape(response, 422)
        assert response.json["errors"]["query"] == {"cursor": ["Not a valid cursor."]}


# -- date-times ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize(
    "path,field", [("/api/v1/subprocessors", "at"), ("/api/v1/audit", "since")]
)
def test_date_times_at_the_edges_of_the_range_are_422_in_queries(
    client, tenant, path, field, value
):
    response = client.get(path, query_string={field: value}, headers=tenant.headers)
    assert_error_shape(response, 422)
    assert response.json["errors"]["query"][field] == [
        "Not a date-time between 0001-01-01 and 9999-12-31 in UTC."
    ]


@pytest.mark.parametrize("value", EDGES)
def test_a_token_expiring_beyond_the_range_is_422_and_not_created(client, tenant, value):
    before = row_counts()
    response = client.post(
        "/api/v1/tokens", json={"name": "edge", "expires_at": value}, headers=tenant.headers
    )
    assert_error_shape(response, 422)
    assert "expires_at" in response.json["errors"]["json"]
    assert row_counts() == before


def test_date_times_are_loaded_as_utc():
    assert DateTimeField().deserialize("2026-05-01T10:00:00+02:00").isoformat() == (
        "2026-05-01T08:00:00+00:00"
    )
    assert DateTimeField().deserialize("9999-12-31T23:59:59Z").year == 9999


def _input_fields(app):
    """(where, field) of every field the routes load with @bp.arguments, nested ones too."""
    pending = []
    for endpoint, view in sorted(app.view_functions.items()):
        arguments = getattr(view, "_apidoc", {}).get("arguments") or {}
        for parameter in arguments.get("parameters", []):
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            pending.extend((f"{endpoint}.{n}", f) for n, f in schema.fields.items())
    while pending:
        where, field = pending.pop()
        if field.dump_only:
            continue
        yield where, field
        for inner in ("inner", "key_field", "value_field"):
            if getattr(field, inner, None) is not None:
                pending.append((where, getattr(field, inner)))
        if isinstance(field, ma.fields.Nested):
            pending.extend((f"{where}.{n}", f) for n, f in field.schema.fields.items())


def test_every_input_integer_is_bounded_and_every_date_time_is_the_shared_field(app):
    """A new input field cannot bring the overflows back: numbers carry a Range within the
    database's, date-times are DateTimeField (UTC, overflow as a field message)."""
    offenders = []
    fields = list(_input_fields(app))
    assert len(fields) > 50
    for where, field in fields:
        if isinstance(field, ma.fields.Number):
            ranges = [v for v in field.validators if isinstance(v, ma.validate.Range)]
            if not any(
                r.min is not None
                and r.max is not None
                and -MAX_BIG_INTEGER <= r.min
                and r.max <= MAX_BIG_INTEGER
                for r in ranges
            ):
                offenders.append(f"{where}: unbounded number")
        if isinstance(field, ma.fields.DateTime | ma.fields.Date) and not isinstance(
            field, DateTimeField
        ):
            offenders.append(f"{where}: not a DateTimeField")
    assert offenders == []


# -- the DPA document and the register's names ---------------------------------------------


def deep_page_tree(depth: int) -> bytes:
    """A well-formed PDF whose page tree nests `depth` Pages nodes above its one page."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        number = 2 + level
        parent = b"" if level == 0 else b" /Parent %d 0 R" % (number - 1)
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (number + 1, parent))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] >>" % (depth + 1))
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_a_dpa_whose_page_tree_is_3000_deep_is_422_and_not_stored(dpo, app):
    sp = make(["DE"])
    db.session.commit()
    before = row_counts()
    refused = post(
        dpo,
        "/dpo/subprocessors/dpas",
        {
            "id": str(sp.public_id),
            "version": "2026-01",
            "signed_on": "2026-01-10",
            "document": (io.BytesIO(deep_page_tree(3000)), "dpa.pdf"),
        },
        sp,
    )
    assert refused.status_code == 422
    assert "This PDF cannot be read." in text(refused)
    assert row_counts() == before
    stored = Path(app.config["STORAGE_URL"].removeprefix("file://"))
    assert not [p for p in stored.rglob("*") if p.is_file()]


def test_a_parser_that_recurses_too_deep_is_an_unreadable_pdf(register, monkeypatch):
    """pypdf before 6 recursed through the page tree; whatever it raises is a 422."""

    class Recursing:
        def __init__(self, stream):
            pass

        @property
        def pages(self):
            raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pypdf, "PdfReader", Recursing)  # read by privacy.pdf.page_count
    with pytest.raises(services.ValidationFailed) as refused:
        services.check_pdf(b"%PDF-1.7\n")
    assert refused.value.data["errors"] == {"document": ["This PDF cannot be read."]}


@pytest.mark.parametrize(
    "name",
    ["Evil Corp\r\nBcc: everyone@example.org", "Evil\nCorp", "Evil\x85Corp", "Evil\u2028Corp"],
)
def test_a_line_break_in_a_sub_processors_name_is_422_and_not_stored(dpo, name):
    existing = make(["DE"], legal_name="Existing GmbH")
    db.session.commit()
    before = row_counts()

    created = post(dpo, "/dpo/subprocessors/new", form(legal_name=name))
    assert created.status_code == 422
    assert "Legal name must not contain control characters or line breaks." in text(created)
    edited = post(
        dpo,
        "/dpo/subprocessors/edit",
        form(id=str(existing.public_id), legal_name=name),
        existing,
    )
    assert edited.status_code == 422
    assert row_counts() == before
    db.session.expire_all()
    assert db.session.scalars(select(SubProcessor.legal_name)).all() == ["Existing GmbH"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("contact", "dpo@example.org\r\nX-Injected: 1"),
        ("website", "https://example.org/\nX-Injected: 1"),
        ("address", "Street 1\x00"),
        ("purpose", "hosting\x1b[31m"),
        ("data_categories", ["contact data", "usage\rdata"]),
        ("services", ["x" * 501]),
        ("data_categories", ["a"] * 101),
    ],
)
def test_every_name_like_field_of_the_register_refuses_control_characters(
    register,
    field,
    value,
):
    data = {
        "legal_name": "Hosting GmbH",
        "address": "Musterstraße 1\n10115 Berlin",  # free text may span lines
        "contact": "privacy@hosting.example",
        "purpose": "hosting\tand storage",
        "locations": ["DE"],
        field: value,
    }
    with pytest.raises(services.ValidationFailed) as refused:
        services.create(data=data, actor="operator:dpo")
    assert list(refused.value.data["errors"]) == [field]
    assert db.session.scalar(select(func.count()).select_from(SubProcessor)) == 0


def test_a_dpa_version_with_a_line_break_is_422(register):
    sp = make(["DE"])
    with pytest.raises(services.ValidationFailed) as refused:
        services.add_dpa(sp, version="v1\r\nv2", signed_on="2026-01-10", actor="operator:dpo")
    assert "version" in refused.value.data["errors"]
    assert sp.dpas == []


# -- 405 ----------------------------------------------------------------------------------


def test_405_says_which_methods_are_allowed_on_the_api_and_the_pages(client, tenant):
    document = client.delete("/api/openapi.json")
    assert_error_shape(document, 405)
    assert set(document.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}

    api = client.put("/api/v1/subjects", json={}, headers=tenant.headers)
    assert_error_shape(api, 405)
    assert set(api.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}

    page = client.get("/dpo/subprocessors/safeguards", headers=HTML)
    assert page.status_code == 405 and page.mimetype == "text/html"
    assert set(page.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert "405" in text(page)  # the HTML error page


# -- gunicorn's own error log ---------------------------------------------------------------


@pytest.fixture
def gunicorn_conf(monkeypatch):
    # Importing the settings sets a default PRIVACY_BASE_URL when none is set.
    monkeypatch.setenv("PRIVACY_BASE_URL", "http://privacy.test")
    return helpers.gunicorn_conf()


def test_gunicorns_logger_logs_the_path_without_the_query(gunicorn_conf, tmp_path):
    from gunicorn.config import Config

    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = gunicorn_conf.PrivateLogger(config)
    try:
        whose = "someone@" + "example.org"
        try:
            raise RuntimeError(f"the body of {whose}")
        except RuntimeError:
            # What gunicorn's Worker.handle_error logs when a streamed response fails.
            logger.exception("Error handling request %s", "/api/v1/export?token=s3cr3t&x=1")
        logger.warning("Invalid request from ip=192.0.2.7: Invalid HTTP Header: 'X: s3cr3t'")
    finally:
        for handler in list(logger.error_log.handlers):
            logger.error_log.removeHandler(handler)
            handler.close()
        for log_filter in list(logger.error_log.filters):
            logger.error_log.removeFilter(log_filter)
    output = (tmp_path / "error.log").read_text()
    assert "Error handling request /api/v1/export\n" in output
    assert "RuntimeError" in output and "Traceback" in output
    assert "Invalid request refused: Invalid HTTP Header" in output
    for secret in ("s3cr3t", "someone", "192.0.2.7"):
        assert secret not in output, output


# A streamed body that fails, the way a streamed export would: before its first part
# (gunicorn then answers 500 and logs the request target), or after it (the answer is cut).
FAILING_STREAM = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    path = environ["PATH_INFO"]
    if path == "/healthz":
        return [b"ok"]
    whose = environ["QUERY_STRING"].rpartition("=")[2]

    def body():
        if path == "/later":
            yield b"the first part\\n"
        raise RuntimeError("failed while sending the data of " + whose)

    return body()
"""


@pytest.mark.integration
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_gunicorn_logs_a_failed_stream_without_its_query_string(tmp_path, log_format):
    (tmp_path / "failing_stream.py").write_text(textwrap.dedent(FAILING_STREAM))
    port = helpers.free_port()
    env = helpers.service_env(
        tmp_path / "instance",
        PRIVACY_BIND=f"127.0.0.1:{port}",
        PRIVACY_LOG_FORMAT=log_format,
        WEB_CONCURRENCY="1",
    )
    args = [
        str(helpers.BIN / "gunicorn"),
        "--config",
        "gunicorn.conf.py",
        "--pythonpath",
        str(tmp_path),
        "failing_stream:app",
    ]
    log = tmp_path / "gunicorn.log"
    with helpers.running(args, env, log):
        helpers.wait_http(f"http://127.0.0.1:{port}/healthz")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/export?token=s3cr3t&email=someone@example.org")
        assert connection.getresponse().status == 500
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/later?token=s3cr3t&email=someone@example.org")
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            connection.getresponse().read()
        connection.close()
        # A request line gunicorn refuses (two parts), with a query string.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /?token=s3cr3t\r\n\r\n")
            raw.recv(1024)
    output = log.read_text()
    assert "Error handling request /export" in output, output
    assert "RuntimeError" in output and "Invalid request refused" in output, output
    for secret in ("s3cr3t", "someone", "ip="):
        assert secret not in output, output


def test_building_gunicorns_logger_again_adds_no_second_filter(gunicorn_conf):
    """Building the logger again (gunicorn does on reload) adds no second filter."""
    from gunicorn.config import Config

    error_log = logging.getLogger("gunicorn.error")
    try:
        gunicorn_conf.PrivateLogger(Config())
        gunicorn_conf.PrivateLogger(Config())
        assert [type(f) for f in error_log.filters] == [gunicorn_conf.PrivateLogFilter]
    finally:
        for handler in list(error_log.handlers):
            error_log.removeHandler(handler)
        for log_filter in list(error_log.filters):
            error_log.removeFilter(log_filter)


@pytest.mark.parametrize("value", ["yes", "0", 1, "true"])
def test_a_json_boolean_is_true_or_false_only(client, tenant, value):
    body = {"url": "https://hooks.example.org/privacy", "rotate_secret": value}
    refused = client.put("/api/v1/subprocessors/webhook", json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.json
    assert "rotate_secret" in refused.json["errors"]["json"]
    assert client.get("/api/v1/subprocessors/webhook", headers=tenant.headers).status_code == 404


@pytest.mark.integration
def test_what_gunicorn_refuses_itself_is_json_in_the_one_shape_without_the_request(tmp_path):
    port = helpers.free_port()
    env = helpers.service_env(
        tmp_path / "instance", PRIVACY_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1"
    )
    args = [str(helpers.BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    with helpers.running(args, env, tmp_path / "gunicorn.log"):
        helpers.wait_http(f"http://127.0.0.1:{port}/healthz")
        long_line = b"GET /api/v1/subjects?email=someone@example.org&pad=" + b"x" * 5000
        for request in (
            long_line + b" HTTP/1.1\r\n\r\n",
            b"GET /?email=someone@example.org\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(request)
                answer = b""
                while chunk := raw.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 "), head
            assert b"Content-Type: application/json" in head
            payload = json.loads(body)
            assert payload["code"] == 400 and payload["message"].startswith("The request")
            assert b"someone" not in answer
