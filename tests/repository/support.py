"""Helpers of the Document Repository tests: the tests' own ITI-41/ITI-43 client and store probes.

Requests are built here with lxml (ProvideAndRegisterDocumentSetRequest around a
``tests.samples`` SubmitObjectsRequest, RetrieveDocumentSetRequest) and sent over real HTTP;
MTOM replies are split with the stdlib ``email`` parser. Every request and reply is checked
against the XSDs in its XOP-reconstructed form (each xop:Include replaced by the base64 of its
part, W3C XOP §3.2), since the schema types ``xds:Document`` as base64Binary.

    doc = Doc(b"%PDF-1.4 ...", "application/pdf")
    reply = provide(server, pid, [doc])
    assert_success(reply.body)
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import httpx
from lxml import etree
from sqlalchemy import Engine, Row, select

from tests import samples, soapclient, xsd
from tests.registry.iti42_support import assert_nothing_stored, remove_slot
from xds.config import Settings
from xds.soap import bytes_attachment, encode_mtom, xop_include
from xds.store import tables
from xds.store.blobs import open_blob_store

__all__ = [
    "NS_XDS", "NS_XOP", "ITI41", "ITI41_RESPONSE", "ITI43", "ITI43_RESPONSE", "PATH",
    "Doc", "Part", "Reply", "submission", "pnr", "provide", "post_mtom", "post_soap",
    "reply_of", "split_mtom", "reconstructed", "assert_success", "assert_failure",
    "retrieve_request", "retrieve", "document_responses", "blob_files", "blob_name", "stored",
    "repository_rows", "entry_row", "assert_nothing_left", "sha1",
]

NS_XDS = "urn:ihe:iti:xds-b:2007"
NS_XOP = "http://www.w3.org/2004/08/xop/include"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI41_RESPONSE = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ITI43_RESPONSE = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
#: Where ``xds.app`` mounts the Document Repository.
PATH = "/xds/repository"

_X = f"{{{NS_XDS}}}"
_INCLUDE = f"{{{NS_XOP}}}Include"
_counter = itertools.count(1)


def sha1(data: bytes) -> str:
    """Lower-case hex SHA-1: the XDS ``hash`` of ``data``."""
    return hashlib.sha1(data).hexdigest()


@dataclass
class Doc:
    """One document of a submission: its bytes and how the DocumentEntry describes them.

    ``hash``/``size`` None leave the Slot out (the repository adds it). ``inline`` sends base64
    text inside xds:Document instead of an xop:Include to a MIME part.
    """

    content: bytes
    mime_type: str = "text/plain"
    hash: str | None = None
    size: int | None = None
    inline: bool = False
    entry_id: str = field(default_factory=lambda: f"Document{next(_counter):02d}")
    unique_id: str = field(default_factory=samples.new_oid)

    @property
    def content_id(self) -> str:
        """The Content-ID of this document's MIME part."""
        return f"{self.entry_id}.{self.unique_id}@tests.xds"


class Part(NamedTuple):
    """One MIME part of an MTOM message."""

    content_type: str
    data: bytes


class Reply(NamedTuple):
    """A repository answer: the HTTP response, its soap:Envelope, the Body's first child, and
    the MIME parts other than the root, by Content-ID (without ``<>``)."""

    http: httpx.Response
    envelope: etree._Element
    body: etree._Element
    parts: dict[str, Part]


# -- ITI-41 ---------------------------------------------------------------------------------------


def submission(patient_id: str, docs: Sequence[Doc], **document_options: Any) -> etree._Element:
    """SubmitObjectsRequest: SubmissionSet01, one DocumentEntry per ``docs`` and the HasMembers.

    ``document_options`` go to every ``samples.document_entry`` (the default
    repositoryUniqueId there is not this repository's: the repository must replace it).
    """
    objects: list[etree._Element] = [samples.submission_set(patient_id=patient_id)]
    for n, doc in enumerate(docs, 1):
        de = samples.document_entry(doc.entry_id, patient_id=patient_id,
                                    unique_id=doc.unique_id, content=doc.content,
                                    mime_type=doc.mime_type, hash=doc.hash, size=doc.size,
                                    **document_options)
        if doc.hash is None:
            remove_slot(de, "hash")
        if doc.size is None:
            remove_slot(de, "size")
        objects += [de, samples.has_member(f"ss-de-{n}", "SubmissionSet01", doc.entry_id,
                                           "Original")]
    return samples.submit_objects_request(objects)


def pnr(sor: etree._Element, docs: Iterable[Doc]) -> etree._Element:
    """xds:ProvideAndRegisterDocumentSetRequest: a copy of ``sor`` and one xds:Document per doc
    (an xop:Include to ``doc.content_id``, or inline base64)."""
    root = etree.Element(_X + "ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    root.append(copy.deepcopy(sor))
    for doc in docs:
        el = etree.SubElement(root, _X + "Document", id=doc.entry_id)
        if doc.inline:
            el.text = base64.b64encode(doc.content).decode()
        else:
            el.append(xop_include(doc.content_id))
    return root


def provide(server: str, patient_id: str, docs: Sequence[Doc], *,
            sor: etree._Element | None = None, mtom: bool = True,
            message_id: str | None = None, timeout: float = 60) -> Reply:
    """Send ITI-41 for ``docs`` (SubmitObjectsRequest ``sor``, default ``submission``); the
    schema-checked reply. ``mtom=False`` sends Simple SOAP (every doc must be inline)."""
    sor = sor if sor is not None else submission(patient_id, docs)
    envelope = soapclient.envelope(ITI41, pnr(sor, docs), message_id=message_id)
    attached = [d for d in docs if not d.inline]
    if mtom:
        return post_mtom(server, envelope, {d.content_id: Part(d.mime_type, d.content)
                                            for d in attached}, timeout=timeout)
    assert not attached, "Simple SOAP carries inline documents only"
    return post_soap(server, envelope)


def post_mtom(server: str, envelope: bytes, parts: dict[str, Part], *,
              check_request: bool = True, timeout: float = 60) -> Reply:
    """POST ``envelope`` and ``parts`` as MTOM (``xds.soap.encode_mtom``, streamed upload);
    ``check_request=False`` skips the schema check of a request that is invalid on purpose."""
    if check_request:
        _assert_valid(envelope, parts)
    stream = encode_mtom(envelope, [bytes_attachment(p.data, cid, p.content_type)
                                    for cid, p in parts.items()])
    response = httpx.post(server + PATH, content=stream.iter_bytes(), headers=stream.headers,
                          timeout=timeout)
    return reply_of(response)


def post_soap(server: str, envelope: bytes) -> Reply:
    """POST ``envelope`` as Simple SOAP 1.2."""
    _assert_valid(envelope, {})
    return reply_of(soapclient.post_raw(server + PATH, envelope))


def reply_of(response: httpx.Response, *, validate: bool = True) -> Reply:
    """Read an ITI-41/ITI-43 answer (MTOM or a Simple SOAP fault); schema-check it."""
    if response.headers.get("content-type", "").startswith("multipart/related"):
        root, parts = split_mtom(response)
    else:
        root, parts = response.content, {}
    envelope = soapclient.parse_envelope(root)
    if validate:
        xsd.assert_valid(reconstructed(envelope, parts))
    return Reply(response, envelope, soapclient.body_of(envelope), parts)


def split_mtom(response: httpx.Response) -> tuple[bytes, dict[str, Part]]:
    """The root part and the other parts of an MTOM reply, read with the stdlib MIME parser.

    Asserts the SOAP 1.2 MTOM media type parameters (App. V.8; spec digest §10 item 20) and
    that the root part is the one ``start`` names.
    """
    content_type = response.headers["content-type"]
    assert 'type="application/xop+xml"' in content_type, content_type
    assert 'start-info="application/soap+xml"' in content_type, content_type
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    root, *rest = message.iter_parts()
    start = str(message.get_param("start"))
    assert _cid(root["Content-ID"]) == _cid(start)
    assert root.get_content_type() == "application/xop+xml"
    parts = {}
    for part in rest:
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        parts[_cid(part["Content-ID"])] = Part(part.get_content_type(), data)
    payload = root.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload, parts


def _cid(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">")


def reconstructed(envelope: etree._Element, parts: dict[str, Part]) -> etree._Element:
    """A copy of ``envelope`` with each xop:Include replaced by the base64 of its part."""
    env = copy.deepcopy(envelope)
    for include in list(env.iter(_INCLUDE)):
        href = include.get("href") or ""
        assert href.startswith("cid:"), href
        parent = include.getparent()
        assert parent is not None
        part = parts.get(unquote(href[4:]))
        # A dangling href (sent on purpose by a bad-input test) is validated as empty content.
        parent.text = base64.b64encode(part.data).decode() if part is not None else ""
        parent.remove(include)
    return env


def _assert_valid(envelope: bytes, parts: dict[str, Part]) -> None:
    xsd.assert_valid(reconstructed(soapclient.parse_envelope(envelope), parts))


def assert_success(reply: Reply, action: str = ITI41_RESPONSE) -> None:
    """HTTP 200, MTOM, the response Action and a RegistryResponse with status Success."""
    assert reply.http.status_code == 200, reply.http.text
    assert reply.http.headers["content-type"].startswith("multipart/related")
    assert soapclient.header(reply.envelope, "Action") == action
    response = _registry_response(reply)
    errors = soapclient.registry_response_errors(response)
    assert soapclient.status(response) == soapclient.SUCCESS, errors
    assert all(e.severity == soapclient.WARNING for e in errors), errors


def assert_failure(reply: Reply, code: str,
                   status: str = soapclient.FAILURE) -> list[soapclient.RegistryError]:
    """An MTOM answer with the response Action whose RegistryResponse has ``status`` and
    whose every Error is ``code``; returns the errors."""
    assert reply.http.status_code == 200, reply.http.text
    assert reply.http.headers["content-type"].startswith("multipart/related")
    response = _registry_response(reply)
    errors = soapclient.registry_response_errors(response)
    assert soapclient.status(response) == status, errors
    assert errors and {e.errorCode for e in errors} == {code}, errors
    assert all(e.severity == soapclient.ERROR for e in errors), errors
    return errors


def _registry_response(reply: Reply) -> etree._Element:
    body = reply.body
    if body.tag == _X + "RetrieveDocumentSetResponse":
        body = body[0]
    assert body.tag == f"{{{samples.NS_RS}}}RegistryResponse", etree.tostring(body)
    return body


# -- ITI-43 ---------------------------------------------------------------------------------------


def retrieve_request(items: Iterable[tuple[str, str] | tuple[str, str, str]]) -> etree._Element:
    """xds:RetrieveDocumentSetRequest; each item is (repositoryUniqueId, documentUniqueId[,
    homeCommunityId])."""
    root = etree.Element(_X + "RetrieveDocumentSetRequest", nsmap={"xds": NS_XDS})
    for item in items:
        req = etree.SubElement(root, _X + "DocumentRequest")
        if len(item) == 3:
            etree.SubElement(req, _X + "HomeCommunityId").text = item[2]
        etree.SubElement(req, _X + "RepositoryUniqueId").text = item[0]
        etree.SubElement(req, _X + "DocumentUniqueId").text = item[1]
    return root


def retrieve(server: str, items: Iterable[tuple[str, str] | tuple[str, str, str]], *,
             mtom: bool = True) -> Reply:
    """Send ITI-43 (MTOM with only a root part, as the TF asks, or Simple SOAP)."""
    envelope = soapclient.envelope(ITI43, retrieve_request(items))
    return post_mtom(server, envelope, {}) if mtom else post_soap(server, envelope)


class Retrieved(NamedTuple):
    """One xds:DocumentResponse with the bytes of the part its xop:Include names."""

    home_community_id: str | None
    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: bytes
    part_type: str


def document_responses(reply: Reply) -> list[Retrieved]:
    """The DocumentResponses of an ITI-43 reply, each resolved against the reply's parts."""
    out = []
    for el in reply.body.iterfind(_X + "DocumentResponse"):
        include = el.find(f"{_X}Document/{_INCLUDE}")
        assert include is not None, etree.tostring(el)
        part = reply.parts[unquote((include.get("href") or "").removeprefix("cid:"))]
        out.append(Retrieved(el.findtext(_X + "HomeCommunityId"),
                             el.findtext(_X + "RepositoryUniqueId") or "",
                             el.findtext(_X + "DocumentUniqueId") or "",
                             el.findtext(_X + "mimeType") or "", part.data, part.content_type))
    return out


# -- the store's truth ----------------------------------------------------------------------------


def blob_files(settings: Settings) -> set[str]:
    """Every file under the blob store and the spool directory, relative to the data dir;
    on an S3 blob store, its objects as ``s3:<sha256>``."""
    found = set()
    roots = [settings.spool_dir] + ([] if settings.blob_url else [settings.blob_dir])
    for root in roots:
        if root.exists():
            found |= {str(p.relative_to(settings.data_dir)) for p in root.rglob("*")
                      if not p.is_dir()}
    if settings.blob_url:
        found |= {f"s3:{blob.sha256}" for blob in open_blob_store(settings).scan()}
    return found


def blob_name(settings: Settings, content: bytes) -> str:
    """How ``blob_files`` names the stored blob of ``content``."""
    digest = hashlib.sha256(content).hexdigest()
    if settings.blob_url:
        return f"s3:{digest}"
    return str(Path("blobs") / digest[:2] / digest[2:4] / digest)


def stored(settings: Settings, content: bytes) -> bytes | None:
    """The bytes the blob store holds under the address of ``content``, None when absent."""
    try:
        return b"".join(open_blob_store(settings).open(hashlib.sha256(content).hexdigest()))
    except FileNotFoundError:
        return None


def repository_rows(engine: Engine, unique_ids: Iterable[str]) -> list[Row[Any]]:
    """repository_document rows whose document_unique_id is one of ``unique_ids``."""
    table = tables.repository_document
    with engine.connect() as conn:
        return list(conn.execute(select(table).where(
            table.c.document_unique_id.in_(sorted(set(unique_ids))))
            .order_by(table.c.document_unique_id)))


def entry_row(engine: Engine, unique_id: str) -> Row[Any]:
    """The one registry document_entry row of ``unique_id``."""
    table = tables.document_entry
    with engine.connect() as conn:
        (row,) = conn.execute(select(table).where(table.c.unique_id == unique_id))
    return row


def assert_nothing_left(engine: Engine, settings: Settings, patient_id: str,
                        unique_ids: Iterable[str], files_before: set[str], *,
                        registry_engine: Engine | None = None) -> None:
    """No repository_document row for ``unique_ids``, no registry row for ``patient_id`` or the
    uniqueIds (in ``registry_engine``, default ``engine``), and exactly ``files_before`` under
    the blob store and the spool."""
    uids = list(unique_ids)
    assert repository_rows(engine, uids) == []
    assert_nothing_stored(registry_engine or engine, patient_id, uids)
    files = blob_files(settings)
    assert files == files_before, {"new": files - files_before, "gone": files_before - files}
