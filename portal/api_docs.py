"""The API documentation at ``/docs``: Swagger UI served from this machine, never from a CDN.

Swagger UI's files come from the ``openapi-ui-bundles`` package (installed from PyPI with Portal, nothing is
committed here) and are served under ``/docs/assets/``; the page starts Swagger UI with a small script of our own
(``/docs/assets/portal-docs.js``: the site CSP allows no inline script) and links the schema,
``/docs/openapi.json``. Every answer under ``/docs`` carries a CSP that allows exactly these: scripts, styles and
images from this origin (Swagger UI sets inline ``style`` attributes), requests to this origin ("Try it out").
"""

from __future__ import annotations

import mimetypes
from html import escape
from typing import Any

from litestar import Request, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath
from litestar.response import Response
from openapi_ui_bundles import swagger_ui

from portal.web import apply_security_headers

DOCS_PATH = "/docs"
ASSETS = f"{DOCS_PATH}/assets"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# The only files of the bundle the page loads (anything else in the package is not served).
VENDOR_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
INIT_SCRIPT = """\
// Starts Swagger UI on the schema the page names (a static file: the CSP allows no inline script).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.getAttribute("data-spec"), dom_id: "#swagger-ui", deepLinking: true });
});
"""
CACHE = "public, max-age=86400"


class SwaggerUIFromPackage(OpenAPIRenderPlugin):
    """Swagger UI whose files are served by Portal itself (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(path="/swagger")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec = escape(self.get_openapi_json_route(request))
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <style>body {{ margin: 0; }} .schema-link {{ font-family: system-ui, sans-serif; margin: 1rem 1.25rem 0; }}</style>
</head>
<body>
  <p class="schema-link">OpenAPI schema: <a href="{spec}">{spec}</a></p>
  <div id="swagger-ui" data-spec="{spec}"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="{ASSETS}/portal-docs.js"></script>
</body>
</html>""".encode()


@get("/assets/{name:str}", include_in_schema=False, name="docs.asset")
async def docs_asset(name: FromPath[str]) -> Response[bytes]:
    if name == "portal-docs.js":
        return Response(INIT_SCRIPT.encode(), media_type="text/javascript", headers={"Cache-Control": CACHE})
    if name not in VENDOR_FILES:
        raise NotFoundException()
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    content = (swagger_ui.static_path / name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": CACHE})


async def docs_security_headers(response: Response[Any]) -> Response[Any]:
    """This router's ``after_request`` (it takes the app's place here): DOCS_CSP, then the usual headers."""
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return apply_security_headers(response)


def docs_router() -> Router:
    """The ``/docs`` router Litestar's OpenAPI plugin fills (page, schema) plus the assets, all under DOCS_CSP."""
    return Router(DOCS_PATH, route_handlers=[docs_asset], include_in_schema=False, after_request=docs_security_headers)
