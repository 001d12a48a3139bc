"""Receipts and invoices as PDF files, rendered from the same templates as their printable HTML pages.

The page's template is rendered with ``pdf=True`` (which swaps the screen stylesheet for ``receipt-pdf.css``, a
stylesheet in the CSS subset the renderer understands, and leaves out the toolbar, the script and the seller's
logo), then turned into a PDF by xhtml2pdf: pure Python (ReportLab underneath), installed from PyPI with no system
library. The renderer never fetches anything: stylesheets resolve to Portal's own static files and fonts to the
Bitstream Vera faces ReportLab ships (wider Unicode than the PDF base fonts: "−", "€", accented letters); any
other URL resolves to nothing. Rendering runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import Request
from litestar.response import Response

from portal.resources import templates_dir

PDF_STYLESHEET = "receipt-pdf.css"
_STATIC = templates_dir() / "static"
# ReportLab's package directory, found without importing it: xhtml2pdf and ReportLab are imported by the first PDF
# (``html_to_pdf``, in a worker thread), not by every server process (~45 MB and 0.3 s each).
_FONTS = Path(str(importlib.util.find_spec("reportlab").origin)).resolve().parent / "fonts"  # type: ignore[union-attr]
_FONT_FILES = {"Vera.ttf", "VeraBd.ttf", "VeraIt.ttf", "VeraBI.ttf"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class PdfRenderError(RuntimeError):
    """The renderer reported errors for a document (a bug in the template or stylesheet, never user input)."""


def _resolve(uri: str, _rel: str | None) -> str:
    """xhtml2pdf's link callback: Portal's static files and ReportLab's Vera fonts only, nothing fetched."""
    if uri.startswith("/static/"):
        candidate = (_STATIC / uri.removeprefix("/static/")).resolve()
        if candidate.parent == _STATIC.resolve() and candidate.is_file():
            return str(candidate)
    if uri.startswith("font:") and uri.removeprefix("font:") in _FONT_FILES:
        return str(_FONTS / uri.removeprefix("font:"))
    return ""


def html_to_pdf(html: str) -> bytes:
    """The PDF of ``html`` (a receipt or invoice page rendered with ``pdf=True``)."""
    from xhtml2pdf import pisa  # type: ignore[import-untyped]  # no type hints shipped; imported on first use

    out = io.BytesIO()
    status = pisa.CreatePDF(src=html, dest=out, encoding="utf-8", link_callback=_resolve)
    if status.err:
        raise PdfRenderError(f"xhtml2pdf reported {status.err} error(s)")
    return out.getvalue()


def pdf_url(request: Request[Any, Any, Any]) -> str:
    """This page's own URL (path and query, a signed link's signature included) asking for the PDF."""
    query = {key: value for key, value in request.query_params.items() if key != "format"}
    return f"{request.url.path}?{urlencode({**query, 'format': 'pdf'})}"


async def pdf_response(
    request: Request[Any, Any, Any], template_name: str, context: dict[str, Any], filename: str
) -> Response[bytes]:
    """The PDF download of a receipt/invoice page: the same template and context as the HTML page."""
    engine = request.app.template_engine
    assert engine is not None, "the app is created with a template engine"
    template = engine.get_template(template_name)
    html = template.render(**context, request=request, csrf_input="", pdf=True)
    data = await anyio.to_thread.run_sync(html_to_pdf, html)
    safe = _UNSAFE_NAME.sub("-", filename).strip("-.") or "document"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{safe}.pdf"',
            "Cache-Control": "private, no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
