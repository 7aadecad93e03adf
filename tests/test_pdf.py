"""PDF rendering: the sample document, page furniture, and no resource from outside templates/."""

from __future__ import annotations

import base64
import datetime as dt
import io
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pypdf
import pytest
from jinja2 import ChoiceLoader
from jinja2 import DictLoader

from privacy.pdf import local_fetcher
from privacy.pdf import render_pdf
from privacy.pdf import templates_root

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
NAMES = ["Zoë Ångström", "Ελένη Παπαδοπούλου", "Дмитрий Иванов", "<b>not bold</b>"]


def has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def pdf_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def render_sample(rows: int = 4) -> bytes:
    return render_pdf(
        "pdf/sample.html",
        title="Auskunft nach Art. 15 DSGVO",
        issuer="Acme GmbH",
        reference="DSR-2026-0042",
        generated_at=dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
        rows=[
            {"name": NAMES[i % len(NAMES)], "category": "contact", "purpose": "support"}
            for i in range(rows)
        ],
    )


@pytest.fixture
def extra_templates(app, monkeypatch):
    """Add templates for one test without touching templates/ on disk."""

    def add(templates: dict[str, str]) -> None:
        loader = ChoiceLoader([DictLoader(templates), app.jinja_env.loader])
        monkeypatch.setattr(app.jinja_env, "loader", loader)

    return add


@pytest.fixture
def http_server():
    """A local web server recording every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_sample_document_renders_names_in_latin_greek_and_cyrillic(app):
    data = render_sample()

    assert data.startswith(b"%PDF-")
    text = "\n".join(pdf_text(data))
    assert "Auskunft nach Art. 15 DSGVO" in text
    assert "Acme GmbH" in text
    assert "DSR-2026-0042" in text
    for name in NAMES:
        assert name in text  # "<b>..." proves the context was escaped, not interpreted


def test_sample_document_renders_chinese_text(app):
    assert has_cjk_font(), "no CJK font: `make test` installs fonts-noto-cjk (.ci/setup-system)"
    text = "\n".join(pdf_text(render_sample()))

    assert "李小龙" in text


def test_pages_are_a4_numbered_and_carry_the_title(app):
    data = render_sample(rows=120)

    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"{number} / {len(pages)}" in text
    # The running header starts on page 2 (page 1 has the big title).
    assert "Auskunft nach Art. 15 DSGVO" in pages[1]
    assert "Name" in pages[1]  # the table header row repeats
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    assert reader.metadata.title == "Auskunft nach Art. 15 DSGVO"


def test_remote_resources_are_never_fetched(app, extra_templates, http_server):
    base_url, hits = http_server
    extra_templates(
        {
            "pdf/remote.html": f"""{{% extends "pdf/base.html" %}}
{{% block head %}}<link rel="stylesheet" href="{base_url}/style.css">
<style>@import url("{base_url}/imported.css"); body {{ background: url("{base_url}/bg.png"); }}
</style>{{% endblock %}}
{{% block content %}}<p>Tracking pixel below.</p>
<img src="{base_url}/pixel.png?subject=42" alt="">
<img src="//127.0.0.1:{base_url.rsplit(":", 1)[1]}/protocol-relative.png" alt="">
{{% endblock %}}""",
        }
    )

    data = render_pdf("pdf/remote.html", title="Remote")

    assert hits == []
    assert data.startswith(b"%PDF-")
    assert "Tracking pixel below." in pdf_text(data)[0]
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages[0].images) == 0


def test_data_url_images_are_embedded(app, extra_templates):
    png = base64.b64encode(PNG).decode()
    extra_templates(
        {
            "pdf/inline.html": '{% extends "pdf/base.html" %}{% block content %}'
            f'<img src="data:image/png;base64,{png}" style="width: 10mm">{{% endblock %}}',
        }
    )

    data = render_pdf("pdf/inline.html", title="Inline image")

    assert len(pypdf.PdfReader(io.BytesIO(data)).pages[0].images) == 1


def test_fetcher_serves_files_under_templates_only(app, tmp_path):
    root = templates_root()
    fetcher = local_fetcher(root)

    response = fetcher.fetch((root / "pdf" / "print.css").as_uri())
    assert response.content_type == "text/css"
    assert b"@page" in response.read()
    response.close()

    for url in (
        "file:///etc/passwd",
        root.as_uri() + "/../pyproject.toml",
        root.as_uri() + "/pdf/missing.png",
        root.as_uri(),
        "file://other-host" + (root / "pdf" / "print.css").as_posix(),
        "http://127.0.0.1:9/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_fetcher_does_not_follow_symlinks_out_of_the_root(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for documents")
    root = tmp_path / "templates"
    root.mkdir()
    (root / "link.txt").symlink_to(secret)

    with pytest.raises(ValueError):
        local_fetcher(root).fetch((root / "link.txt").as_uri())


def test_importing_the_module_does_not_import_weasyprint():
    code = "import sys, privacy.pdf; sys.exit('weasyprint' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
