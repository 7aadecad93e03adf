"""PDF documents: rendered from templates/pdf/ with WeasyPrint (nothing is fetched from the
network), and uploaded ones read with pypdf. Both libraries are imported on first use, so
starting the app imports neither."""

from __future__ import annotations

import functools
import io
import logging
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flask import current_app
from flask import render_template

logger = logging.getLogger(__name__)


def templates_root() -> Path:
    """The app's template folder: the base URL of every document and the only readable files."""
    app = current_app
    return (Path(app.root_path) / (app.template_folder or "templates")).resolve()


def render_pdf(template: str, **context) -> bytes:
    """Render `template` (e.g. "pdf/receipt.html") with Flask's Jinja and return the PDF bytes.

    Relative links (stylesheets, images) resolve against the templates folder. Only files
    under that folder and data: URLs are loaded: a document about a data subject must not
    reach out to another server (and reveal who is being written about) or read other files.
    Refused resources are left out of the PDF; rendering still succeeds.
    """
    # Imported on first use, not above: starting the app must not import WeasyPrint (Pango).
    import weasyprint

    root = templates_root()
    html = render_template(template, **context)
    document = weasyprint.HTML(
        string=html, base_url=root.as_uri() + "/", url_fetcher=local_fetcher(root)
    )
    return document.write_pdf()


def page_count(data: bytes) -> int | None:
    """The number of pages of the PDF `data`, or None when pypdf cannot read it.

    pypdf answers a malformed file with its own errors, but also with RecursionError (a
    page tree thousands deep), LimitReachedError, KeyError, AttributeError...: any of them
    means "cannot be read".
    """
    from pypdf import PdfReader  # on first use, as WeasyPrint above

    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception:
        return None


def local_fetcher(root: Path):
    """A WeasyPrint URL fetcher that serves data: URLs and regular files under `root` only."""
    return _fetcher_class()(root)


@functools.cache
def _fetcher_class():
    # Built on first use so importing this module does not import WeasyPrint (and Pango).
    from weasyprint.urls import URLFetcher
    from weasyprint.urls import URLFetcherResponse

    class LocalFetcher(URLFetcher):
        def __init__(self, root: Path) -> None:
            super().__init__(timeout=5, allowed_protocols={"data", "file"}, allow_redirects=False)
            self.root = root

        def fetch(self, url: str, headers: dict | None = None):
            scheme = urlsplit(url).scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                return self._local_file(url)
            raise ValueError(f"PDF rendering does not fetch {scheme or 'relative'} URLs")

        def _local_file(self, url: str):
            parts = urlsplit(url)
            if parts.netloc not in {"", "localhost"}:
                raise ValueError("PDF rendering reads local files only")
            path = Path(url2pathname(parts.path)).resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                raise ValueError("PDF rendering reads files under the templates folder only")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(
                path.as_uri(), path.read_bytes(), headers={"Content-Type": content_type}
            )

    return LocalFetcher
