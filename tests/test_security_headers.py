"""Security headers on every response, the strict CSP with per-response nonces, Swagger UI
under that policy, and HTTPS enforcement (redirect and HSTS) only with FORCE_HTTPS."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from flask import render_template_string

from privacy import create_app
from privacy import security
from tests.conftest import app_config

EXPECTED = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def assert_security_headers(response, csp: str = EXPECTED["Content-Security-Policy"]) -> None:
    for name, value in {**EXPECTED, "Content-Security-Policy": csp}.items():
        assert response.headers.getlist(name) == [value], name


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


class PageParser(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []  # attrs plus the inline "body"
        self.styles: list[dict] = []
        self.inline_attributes: list[tuple[str, str]] = []
        self.elements: list[tuple[str, dict]] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self.inline_attributes += [
            (tag, name) for name in attributes if name.startswith("on") or name == "style"
        ]
        if tag in ("script", "style"):
            self._open = {**attributes, "body": ""}
            (self.scripts if tag == "script" else self.styles).append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["body"] += data

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._open = None


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


# -- every kind of response --------------------------------------------------------------


def test_json_api_answer_carries_every_security_header(client, tenant):
    response = client.get("/api/v1/subjects", headers=tenant.headers)
    assert response.status_code == 200
    assert_security_headers(response)
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/subjects", 401),
        ("/api/v1/no-such-thing", 404),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/api/openapi.json", 200),
        ("/api/docs", 200),
        ("/api/docs/init.js", 200),
        ("/api/docs/assets/swagger-ui-bundle.js", 200),
        ("/api/docs/assets/swagger-ui.css", 200),
    ],
)
def test_every_kind_of_answer_carries_every_security_header(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert_security_headers(response)
    assert "Strict-Transport-Security" not in response.headers


def test_html_error_page_carries_every_security_header(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert_security_headers(response)


def test_streamed_answer_carries_the_headers_and_still_streams(client, tenant):
    lines = [json.dumps("first line"), json.dumps({"text": "second line"})]
    response = client.post(
        "/api/v1/scrub/stream",
        data="\n".join(lines) + "\n",
        headers=tenant.headers,
        content_type="application/x-ndjson",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.is_streamed
    assert_security_headers(response)
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [row["text"] for row in rows] == ["first line", "second line"]


def test_policy_allows_nothing_inline_and_no_foreign_origin(client):
    directives = csp_directives(client.get("/healthz"))
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    policy = " ".join(value for values in directives.values() for value in values)
    for loose in ("'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:", "blob:"):
        assert loose not in policy.split()


# -- Swagger UI under the policy ---------------------------------------------------------


def test_swagger_page_has_no_inline_script_style_or_handler(client):
    page = parse(client.get("/api/docs").get_data(as_text=True))
    assert page.scripts, "the page loads Swagger UI"
    for script in page.scripts:
        assert script.get("src", "").startswith("/"), script  # same origin, a file
        assert not script["body"].strip(), script
    assert page.styles == []
    assert page.inline_attributes == []


def test_swagger_page_loads_only_files_we_serve(client):
    page = parse(client.get("/api/docs").get_data(as_text=True))
    urls = [s["src"] for s in page.scripts] + [
        attrs["href"] for tag, attrs in page.elements if tag == "link"
    ]
    assert "/api/docs/assets/swagger-ui-bundle.js" in urls
    assert "/api/docs/init.js" in urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype in ("text/javascript", "application/javascript", "text/css")
    container = next(a for t, a in page.elements if a.get("id") == "swagger-ui-container")
    assert container["data-spec-url"] == "/api/openapi.json"
    assert json.loads(container["data-config"]) == {}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the script")
def test_swagger_init_script_starts_swagger_ui_with_our_spec(client, tmp_path):
    html = client.get("/api/docs").get_data(as_text=True)
    container = next(a for t, a in parse(html).elements if a.get("id") == "swagger-ui-container")
    init = client.get("/api/docs/init.js").get_data(as_text=True)
    # A stand-in DOM: only what the script touches; the container's data attributes as served.
    harness = tmp_path / "harness.js"
    harness.write_text(
        "const dataset = "
        + json.dumps({"specUrl": container["data-spec-url"], "config": '{"deepLinking": true}'})
        + ";\nglobalThis.window = globalThis;\n"
        "globalThis.document = {getElementById: (id) => "
        "id === 'swagger-ui-container' ? {dataset} : null};\n"
        "globalThis.SwaggerUIBundle = (config) => { console.log(JSON.stringify(config)); "
        "return {}; };\n" + init
    )
    result = subprocess.run(
        ["node", str(harness)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "url": "/api/openapi.json",
        "dom_id": "#swagger-ui-container",
        "validatorUrl": None,
        "deepLinking": True,
    }


# -- nonces for the rare page that needs an inline script --------------------------------


@pytest.fixture
def nonce_app(app):
    page_app = create_app(app_config())

    def inline_page():
        return render_template_string(
            '<script nonce="{{ csp_nonce() }}">start()</script>'
            '<style nonce="{{ csp_nonce() }}">p{}</style>'
        )

    def own_policy():
        return "", 204, {"Content-Security-Policy": "default-src 'none'"}

    page_app.add_url_rule("/inline", view_func=inline_page)
    page_app.add_url_rule("/own-policy", view_func=own_policy)
    return page_app


def test_page_using_a_nonce_allows_exactly_that_nonce(nonce_app):
    client = nonce_app.test_client()
    first = client.get("/inline")
    page = parse(first.get_data(as_text=True))
    nonce = page.scripts[0]["nonce"]
    assert len(nonce) >= 22 and page.styles[0]["nonce"] == nonce
    directives = csp_directives(first)
    assert directives["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert directives["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert_security_headers(first, csp=security.content_security_policy(nonce=nonce))

    second = parse(client.get("/inline").get_data(as_text=True)).scripts[0]["nonce"]
    assert second != nonce
    # The next response that renders no nonce allows none, even in the same app context.
    assert_security_headers(client.get("/healthz"))


def test_a_view_that_sets_its_own_policy_keeps_it_once(nonce_app):
    response = nonce_app.test_client().get("/own-policy")
    assert response.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]


def test_google_sign_in_may_be_a_form_that_redirects_to_the_issuer(app):
    google = create_app(
        app_config(OIDC_CLIENT_ID="client-id", OIDC_ISSUER="https://accounts.google.com")
    )
    directives = csp_directives(google.test_client().get("/healthz"))
    assert directives["form-action"] == ["'self'", "https://accounts.google.com"]
    assert directives["script-src"] == ["'self'"]


def test_nonce_outside_a_request_is_empty(app):
    assert security.csp_nonce() == ""


# -- HTTPS in production -----------------------------------------------------------------


@pytest.fixture
def https_client(app):
    return create_app(app_config(FORCE_HTTPS=True)).test_client()


@pytest.mark.parametrize("path", ["/api/v1/subjects?page=2", "/api/docs", "/api/openapi.json"])
def test_plain_http_is_redirected_with_308_when_https_is_forced(https_client, path):
    response = https_client.get(path)
    assert response.status_code == 308
    assert response.headers["Location"] == "https://localhost" + path
    assert_security_headers(response)


def test_post_is_redirected_with_308_so_the_method_is_kept(https_client):
    response = https_client.post("/api/v1/scrub", json={"text": "x"})
    assert response.status_code == 308
    assert response.headers["Location"] == "https://localhost/api/v1/scrub"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_answer_over_plain_http(https_client, path):
    response = https_client.get(path)
    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.parametrize("path", ["/healthz", "/api/openapi.json", "/api/docs"])
def test_https_answers_carry_hsts_once_when_https_is_forced(https_client, path):
    response = https_client.get(path, base_url="https://localhost")
    assert response.status_code == 200
    assert response.headers.getlist("Strict-Transport-Security") == [security.HSTS]
    assert_security_headers(response)


def test_without_force_https_nothing_is_redirected_and_no_hsts(client):
    for base_url in ("http://localhost", "https://localhost"):
        response = client.get("/api/openapi.json", base_url=base_url)
        assert response.status_code == 200
        assert "Strict-Transport-Security" not in response.headers
