"""``GET /docs``: a page for reading and trying the API, Swagger UI over ``/openapi.json``.

Everything the page loads comes from this server: Swagger UI's files from the installed ``swagger-ui-bundle-v2``
package (Python package ``swagger_ui_bundle``), served at ``/docs/<asset>`` (a fixed list of files, read once), and
the page's own start script. Its ``Content-Security-Policy`` lets it reach this origin only: no host elsewhere is
ever asked for anything (Swagger UI's online validator is off). Like ``/openapi.json``, the page and its files need
no token; the calls made from the page ("Try it out") carry the token given under "Authorize". The page uses
relative links, so it works behind a proxy that serves the API under a prefix.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import trio
from quart import Response
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.schemas import ApiError, takes

PATH = "/docs"
ASSETS = "/docs/<asset>"
#: the page's own start script (an asset of this module, not of the package)
START_SCRIPT = "wildduck-docs.js"
#: the package's files the page may load, and their media types
PACKAGE_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
#: the media types ``/docs/<asset>`` answers with (without parameters), for the OpenAPI document
ASSET_TYPES = ("text/css", "text/javascript", "image/png")

#: the page: only this origin, scripts from files (no inline script), Swagger UI's inline styles and data: images
SECURITY = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WildDuck API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="docs/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="docs/favicon-16x16.png">
</head>
<body>
<noscript>This page needs JavaScript. The API's description is <a href="openapi.json">openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/wildduck-docs.js"></script>
</body>
</html>
"""

START = """"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def package_dir() -> Path:
    """Where the installed package keeps Swagger UI's files."""
    bundle = importlib.import_module("swagger_ui_bundle")
    return Path(str(bundle.swagger_ui_path))


def register(app: QuartTrio, api: Api) -> None:
    loaded: dict[str, bytes] = {START_SCRIPT: START.encode()}
    types = {**PACKAGE_FILES, START_SCRIPT: "text/javascript; charset=utf-8"}

    @app.get(PATH)
    @takes({}, produces="text/html")
    async def docs() -> Response:
        """This API's documentation (Swagger UI over /openapi.json), from this server alone."""
        await api.values()
        return Response(PAGE, status=200, mimetype="text/html", headers=SECURITY)

    @app.get(ASSETS)
    @takes({}, produces=ASSET_TYPES[0], also_produces=ASSET_TYPES[1:], path={"asset": {"enum": sorted(types)}})
    async def docs_asset(asset: str) -> Response:
        """A file of the documentation page (Swagger UI's, from the installed package)."""
        await api.values()
        kind = types.get(asset)
        if kind is None:
            raise ApiError(404, "ResourceNotFound", f"{PATH}/{asset} does not exist")
        data = loaded.get(asset)
        if data is None:
            data = loaded[asset] = await trio.Path(package_dir() / asset).read_bytes()
        return Response(data, status=200, headers={"Content-Type": kind, "Cache-Control": "public, max-age=3600",
                                                   "X-Content-Type-Options": "nosniff"})
