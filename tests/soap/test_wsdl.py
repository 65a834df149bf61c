"""WSDL publication: ?wsdl with live addresses, the /wsdl/ schema tree, zeep as a real client."""

from __future__ import annotations

import httpx
import pytest
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsa import WsAddressingPlugin

from xds.soap import parse_xml

WSDL_NS = {
    "w": "http://schemas.xmlsoap.org/wsdl/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "xsd": "http://www.w3.org/2001/XMLSchema",
}


def _wsdl(client: httpx.Client, query: str = "wsdl", **headers: str) -> etree._Element:
    response = client.get("/xds/registry?" + query, headers=headers)
    assert response.status_code == 200
    root = parse_xml(response.content, max_bytes=1 << 22)
    assert root.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
    return root


@pytest.mark.parametrize("query", ["wsdl", "WSDL"])
def test_wsdl_carries_real_address_and_absolute_schema_locations(
    client: httpx.Client, base_url: str, query: str
) -> None:
    root = _wsdl(client, query)
    (address,) = root.findall("w:service/w:port/soap12:address", WSDL_NS)
    assert address.get("location") == base_url + "/xds/registry"
    locations = [e.get("schemaLocation", "") for e in root.iterfind(".//xsd:include", WSDL_NS)]
    assert base_url + "/wsdl/iti/schema/ebRS/query.xsd" in locations
    assert all(loc.startswith(base_url + "/wsdl/iti/schema/") for loc in locations)
    for location in locations:
        assert client.get(location).status_code == 200


def test_wsdl_address_follows_host_header(client: httpx.Client) -> None:
    root = _wsdl(client, Host="registry.example.org:8443")
    address = root.find("w:service/w:port/soap12:address", WSDL_NS)
    assert address is not None
    assert address.get("location") == "http://registry.example.org:8443/xds/registry"


def test_wsdl_ignores_malformed_host_header(client: httpx.Client, base_url: str) -> None:
    root = _wsdl(client, Host='evil"/><x y="')
    address = root.find("w:service/w:port/soap12:address", WSDL_NS)
    assert address is not None and address.get("location") == base_url + "/xds/registry"


QUERY = {
    "ResponseOption": {"returnType": "LeafClass", "returnComposedObjects": True},
    "AdhocQuery": {"id": "urn:test:query"},
}


@pytest.fixture(scope="module")
def zeep_client(base_url: str) -> zeep.Client:
    return zeep.Client(base_url + "/xds/registry?wsdl")  # type: ignore[no-untyped-call]


def test_zeep_loads_the_registry_wsdl_and_calls_stored_query(zeep_client: zeep.Client) -> None:
    # zeep adds wsa:Action/MessageID/To by itself because the IHE WSDL carries wsaw:Action.
    result = zeep_client.service.DocumentRegistry_RegistryStoredQuery(**QUERY)
    assert result.status.endswith(":Success")


def test_zeep_wsa_plugin_on_ihe_wsdl_duplicates_headers_and_is_refused(base_url: str) -> None:
    plugins = [WsAddressingPlugin()]
    client = zeep.Client(base_url + "/xds/registry?wsdl", plugins=plugins)  # type: ignore[no-untyped-call]
    with pytest.raises(zeep.exceptions.Fault) as info:
        client.service.DocumentRegistry_RegistryStoredQuery(**QUERY)
    assert [q.localname for q in info.value.subcodes] == ["InvalidAddressingHeader"]


@pytest.mark.parametrize(
    "path",
    [
        "/wsdl/%2E%2E/pyproject.toml",
        "/wsdl/iti/%2e%2e/%2e%2e/xds/config.py",
        "/wsdl/iti/schema/..%2F..%2F..%2Fpyproject.toml",
        "/wsdl//etc/passwd",
        "/wsdl/iti/wsdl/missing.wsdl",
        "/wsdl/iti",
        "/wsdl/",
    ],
)
def test_wsdl_tree_refuses_traversal_and_other_files(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text and "[project]" not in response.text


def test_wsdl_tree_serves_schemas(client: httpx.Client) -> None:
    response = client.get("/wsdl/w3/soap-1.2-envelope.xsd")
    assert response.status_code == 200
    assert parse_xml(response.content, max_bytes=1 << 20).tag.endswith("}schema")
