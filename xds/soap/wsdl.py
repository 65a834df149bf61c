"""WSDL publication: ``?wsdl`` with the live endpoint address, and the schema tree under /wsdl/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from lxml import etree
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ..config import WSDL_DIR
from .xmlparse import parse_xml

__all__ = ["WsdlFiles", "render_wsdl", "request_origin", "wsdl_files_app"]

_ADDRESS_TAGS = frozenset(
    {
        "{http://schemas.xmlsoap.org/wsdl/soap12/}address",
        "{http://schemas.xmlsoap.org/wsdl/soap/}address",
    }
)
_WSDL_IMPORT = "{http://schemas.xmlsoap.org/wsdl/}import"
_SUFFIXES = (".wsdl", ".xsd")
_MAX_FILE = 8 * 1024 * 1024
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_XML_TYPE = "text/xml; charset=utf-8"


def render_wsdl(path: Path, *, address: str, base_url: str | None) -> bytes:
    """The WSDL at ``path`` with every soap/soap12 ``address/@location`` set to ``address`` and,
    when ``base_url`` (the URL the WSDL is published at) is given, every relative
    ``schemaLocation``/import ``location`` made absolute against it."""
    root = parse_xml(path.read_bytes(), max_bytes=_MAX_FILE)
    for element in root.iter():
        if element.tag in _ADDRESS_TAGS:
            element.set("location", address)
        if base_url is None:
            continue
        attr = "location" if element.tag == _WSDL_IMPORT else "schemaLocation"
        value = element.get(attr)
        if value and not urlsplit(value).scheme:
            element.set(attr, urljoin(base_url, value))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def request_origin(scope: Scope, public_url: str = "") -> str:
    """``scheme://host[:port]`` as the client addressed us (a sane Host header), else the socket."""
    if public_url:
        return public_url.rstrip("/")
    scheme = str(scope.get("scheme", "http"))
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1").strip()
            if _HOST.match(host):
                return f"{scheme}://{host}"
            break
    server = scope.get("server") or ("127.0.0.1", None)
    port = f":{server[1]}" if server[1] else ""
    return f"{scheme}://{server[0]}{port}"


class WsdlFiles:
    """ASGI app serving the ``.wsdl``/``.xsd`` files under ``directory`` and nothing else.

    Mount it where the endpoints publish schemas: ``Mount("/wsdl", app=wsdl_files_app)`` (or a
    ``Route("/wsdl/{path:path}", ...)``). The tree layout is kept, so relative includes resolve.
    """

    def __init__(self, directory: Path = WSDL_DIR) -> None:
        self.directory = directory.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response: Response
        if scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, HEAD"})
        else:
            file = self._lookup(_relative_path(scope))
            if file is None:
                response = PlainTextResponse("Not Found", 404)
            else:
                response = Response(file.read_bytes(), media_type=_XML_TYPE)
        await response(scope, receive, send)

    def _lookup(self, relative: str) -> Path | None:
        parts = relative.split("/")
        if not relative or "\\" in relative or "\x00" in relative or ".." in parts:
            return None
        candidate = (self.directory / relative).resolve()
        if not candidate.is_relative_to(self.directory) or candidate.suffix not in _SUFFIXES:
            return None
        return candidate if candidate.is_file() else None


def _relative_path(scope: Scope) -> str:
    params = scope.get("path_params") or {}
    if "path" in params:
        return str(params["path"]).lstrip("/")
    # Under a Mount, starlette keeps the full path and puts the mount prefix in root_path.
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.lstrip("/")


#: ``WsdlFiles`` over the official files shipped in ``wsdl/``.
wsdl_files_app = WsdlFiles()
