"""Document Source, ITI-41 initiator (ITI TF-2 §3.41): metadata for files, sent as MTOM/XOP with
each document streamed from disk."""

from __future__ import annotations

import asyncio
import mimetypes
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from lxml import etree

from xds.actions import Action
from xds.clients.registration import _error as _registry_error
from xds.ebrim.rim import Element
from xds.ebrim.submission import build_submit_objects_request
from xds.ebrim.vocabulary import (
    NS_RS, NS_XDS, AssociationType, DocumentEntryType, ResponseStatus,
)
from xds.model.errors import RegistryError
from xds.model.metadata import Association, Author, DocumentEntry, Submission, SubmissionSet
from xds.model.values import CX, Code, LocalizedString
from xds.security.credentials import NO_CREDENTIALS, Credentials
from xds.soap import (
    MtomMessage, MtomStream, SoapFault, build_envelope, encode_mtom, file_attachment, new_content_id,
    parse_envelope, parse_xml, read_multipart, xop_include,
)
from xds.soap.mtom import parse_content_type
from xds.soap.ns import SOAP12_ENV, WSA, WSA_ANONYMOUS, qname
from xds.soap.xmlparse import XmlError

__all__ = [
    "DEFAULT_SOURCE_ID", "CLASS_CODE", "TYPE_CODE", "FORMAT_CODE", "PRACTICE_SETTING_CODE",
    "HEALTHCARE_FACILITY_TYPE_CODE", "CONFIDENTIALITY_CODE", "CONTENT_TYPE_CODE", "MAX_ROOT_BYTES",
    "Progress",
    "RegistryResponse", "RepositoryFault", "build_submission", "new_unique_id", "parse_code",
    "provide_and_register", "provide_and_register_request", "registry_response_of",
]

#: sourceId (OID) of this Document Source unless configured otherwise.
DEFAULT_SOURCE_ID = "1.3.6.1.4.1.21367.13.40.1"
_LOINC = "2.16.840.1.113883.6.1"
_SNOMED = "2.16.840.1.113883.6.96"
# Defaults for a generic document; an affinity domain's value sets override them (ITI TF-3 §4.2.3.2).
CLASS_CODE = Code("34109-9", _LOINC, LocalizedString("Note"))
TYPE_CODE = Code("34109-9", _LOINC, LocalizedString("Note"))
FORMAT_CODE = Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3",
                   LocalizedString("mimeType Sufficient"))
PRACTICE_SETTING_CODE = Code("394802001", _SNOMED, LocalizedString("General medicine"))
HEALTHCARE_FACILITY_TYPE_CODE = Code("22232009", _SNOMED, LocalizedString("Hospital"))
CONFIDENTIALITY_CODE = Code("N", "2.16.840.1.113883.5.25", LocalizedString("Normal"))
CONTENT_TYPE_CODE = Code("34109-9", _LOINC, LocalizedString("Note"))

#: Called as bytes move: ``progress(done, total)``; ``total`` is None when unknown.
Progress = Callable[[int, int | None], None]

#: Cap on the root part of an answer (an envelope, or a Retrieve response with inline base64).
MAX_ROOT_BYTES = 64 * 1024 * 1024
_TITLE_MAX = 128  # ITI TF-3 §4.2.3.2.24
_RS = f"{{{NS_RS}}}"
_XDS = f"{{{NS_XDS}}}"


def new_unique_id() -> str:
    """A fresh OID under the UUID arc, ``2.25.<128-bit integer>`` (ITU-T X.667)."""
    return f"2.25.{uuid.uuid4().int}"


def parse_code(value: str) -> Code:
    """``code^^scheme`` or ``code^^scheme^display`` as a Code (display defaults to the code).

    Raises ValueError for any other shape.
    """
    parts = value.split("^")
    if len(parts) < 3 or not parts[0] or parts[1] or not parts[2]:
        raise ValueError(f"{value!r} is not code^^codingScheme[^displayName]")
    display = "^".join(parts[3:]) or parts[0]
    return Code(parts[0], parts[2], LocalizedString(display))


def _dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def build_submission(
    files: Sequence[Path],
    patient_id: str,
    *,
    source_id: str = DEFAULT_SOURCE_ID,
    title: str | None = None,
    mime_type: str | None = None,
    class_code: Code = CLASS_CODE,
    type_code: Code = TYPE_CODE,
    format_code: Code = FORMAT_CODE,
    practice_setting_code: Code = PRACTICE_SETTING_CODE,
    healthcare_facility_type_code: Code = HEALTHCARE_FACILITY_TYPE_CODE,
    confidentiality_codes: Sequence[Code] = (CONFIDENTIALITY_CODE,),
    content_type_code: Code = CONTENT_TYPE_CODE,
    language_code: str = "en-US",
    author: Author | None = None,
    submission_time: datetime | None = None,
) -> Submission:
    """A complete ITI-41 Submission: one SubmissionSet and one DocumentEntry per file, in order.

    Ids are symbolic (``SubmissionSet01``, ``Document01``, ``Association01`` ...); uniqueIds are
    fresh ``2.25.`` OIDs; mimeType is guessed from the file name (``mime_type`` overrides for
    every file), creationTime is the file's mtime in UTC and the title its name unless
    ``title`` is given. hash and size are left out: the repository computes them. ``author``
    goes on the SubmissionSet and on every DocumentEntry. Raises ValueError for a patient id
    that is not a CX ``id^^^&OID&ISO`` or for no files at all.
    """
    if CX.parse(patient_id) is None:
        raise ValueError(f"patient id {patient_id!r} is not of the form id^^^&OID&ISO")
    if not files:
        raise ValueError("a submission needs at least one document")
    authors = [author] if author is not None else []
    ss = SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=new_unique_id(),
        patient_id=patient_id,
        source_id=source_id,
        submission_time=_dtm(submission_time or datetime.now(UTC)),
        content_type_code=content_type_code,
        authors=list(authors),
    )
    submission = Submission(submission_sets=[ss])
    for number, path in enumerate(files, start=1):
        guessed = mimetypes.guess_type(path.name, strict=False)[0]
        de = DocumentEntry(
            entry_uuid=f"Document{number:02d}",
            object_type=DocumentEntryType.Stable,
            mime_type=mime_type or guessed or "application/octet-stream",
            title=LocalizedString((title or path.name)[:_TITLE_MAX], lang=language_code),
            unique_id=new_unique_id(),
            patient_id=patient_id,
            source_patient_id=patient_id,
            creation_time=_dtm(datetime.fromtimestamp(path.stat().st_mtime, UTC)),
            language_code=language_code,
            authors=list(authors),
            class_code=class_code,
            confidentiality_codes=list(confidentiality_codes),
            format_code=format_code,
            healthcare_facility_type_code=healthcare_facility_type_code,
            practice_setting_code=practice_setting_code,
            type_code=type_code,
        )
        submission.document_entries.append(de)
        submission.associations.append(Association(
            entry_uuid=f"Association{number:02d}",
            association_type=AssociationType.HasMember,
            source_object=ss.entry_uuid,
            target_object=de.entry_uuid,
            submission_set_status=["Original"],
        ))
    return submission


@dataclass(slots=True, kw_only=True)
class RegistryResponse:
    """The ``rs:RegistryResponse`` of an ITI-41 (or the one inside an ITI-43 answer)."""

    status: ResponseStatus
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """True for status Success (warnings may still be present)."""
        return self.status == ResponseStatus.Success


class RepositoryFault(Exception):
    """The repository answered with a SOAP Fault, or with something that is no SOAP answer."""


def _addressing(url: str) -> list[Element]:
    # IHE_WSA102: ReplyTo anonymous for a synchronous exchange; To names the endpoint.
    to = etree.Element(qname(WSA, "To"), nsmap={"wsa": WSA})
    to.text = url
    reply_to = etree.Element(qname(WSA, "ReplyTo"), nsmap={"wsa": WSA})
    etree.SubElement(reply_to, qname(WSA, "Address")).text = WSA_ANONYMOUS
    return [to, reply_to]


def provide_and_register_request(
    url: str, submission: Submission, files: Sequence[Path],
    credentials: Credentials = NO_CREDENTIALS,
) -> MtomStream:
    """The ITI-41 message for ``submission``: ``files[i]`` is the content of
    ``submission.document_entries[i]``, each an MTOM part read from disk when it is sent.

    ``.root`` of the result is the envelope (``xds:ProvideAndRegisterDocumentSetRequest`` with
    one ``xds:Document`` holding an ``xop:Include`` per entry). Raises ValueError when the
    numbers of files and DocumentEntries differ.
    """
    entries = submission.document_entries
    if len(files) != len(entries):
        raise ValueError(f"{len(files)} files for {len(entries)} DocumentEntries")
    body = etree.Element(_XDS + "ProvideAndRegisterDocumentSetRequest", nsmap={"xds": NS_XDS})
    body.append(build_submit_objects_request(submission))
    attachments = []
    for de, path in zip(entries, files, strict=True):
        content_id = new_content_id()
        etree.SubElement(body, _XDS + "Document", id=de.entry_uuid).append(xop_include(content_id))
        attachments.append(file_attachment(
            path, content_id, de.mime_type or "application/octet-stream"))
    envelope = build_envelope(body, action=Action.ProvideAndRegisterDocumentSet_b,
                              headers=_addressing(url) + credentials.soap_headers())
    return encode_mtom(envelope, attachments)


def provide_and_register(
    url: str,
    submission: Submission,
    files: Sequence[Path],
    *,
    progress: Progress | None = None,
    timeout: float = 600.0,
    credentials: Credentials = NO_CREDENTIALS,
) -> RegistryResponse:
    """Send ITI-41 to the repository at ``url`` and return its RegistryResponse.

    ``credentials``: the TLS client certificate and CAs for an https URL, the XUA assertion.

    ``files`` pair with ``submission.document_entries`` by position; they stream from disk with
    a Content-Length, so memory does not grow with their size. ``progress`` sees the request
    bytes sent. Raises RepositoryFault for a SOAP Fault or an answer that is not a
    RegistryResponse, httpx.HTTPError when the repository cannot be reached.

    >>> sub = build_submission([Path("report.pdf")], "42^^^&1.3.6.1.4.1.21367.13.20.1000&ISO")
    >>> provide_and_register("http://127.0.0.1:8080/xds/repository", sub, [Path("report.pdf")])
    """
    stream = provide_and_register_request(url, submission, files, credentials)
    body = asyncio.run(_exchange(url, stream, progress, timeout, credentials.verify()))
    if body.tag != _RS + "RegistryResponse":
        raise RepositoryFault(f"expected rs:RegistryResponse, got {body.tag}")
    return registry_response_of(body)


def registry_response_of(el: Element) -> RegistryResponse:
    """The status and errors of an ``rs:RegistryResponse`` element."""
    try:
        status = ResponseStatus(el.get("status") or "")
    except ValueError:
        raise RepositoryFault(f"unknown RegistryResponse status {el.get('status')!r}") from None
    errors = [_registry_error(e) for e in el.iterfind(f"{_RS}RegistryErrorList/{_RS}RegistryError")]
    return RegistryResponse(status=status, errors=errors)


async def _exchange(url: str, stream: MtomStream, progress: Progress | None,
                    timeout: float, verify: ssl.SSLContext | bool) -> Element:
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=30.0),
                                 verify=verify) as client:
        response = await client.post(url, content=_counted(stream, progress),
                                     headers=stream.headers)
    # The ITI-41 answer is a small MTOM message without attachments: its root is all we need.
    content_type = response.headers.get("content-type", "")
    if parse_content_type(content_type)[0] != "multipart/related":
        return _envelope_body(response.content, content_type)
    with tempfile.TemporaryDirectory(prefix="xds-source-") as spool:
        message = await _read_mtom(_once(response.content), content_type, Path(spool))
        message.close()
    return _envelope_body(message.root, message.root_content_type)


async def _counted(stream: MtomStream, progress: Progress | None) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in stream.aiter_bytes():
        yield chunk
        sent += len(chunk)
        if progress is not None:
            progress(sent, stream.content_length)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read_mtom(chunks: AsyncIterator[bytes], content_type: str,
                     spool_dir: Path) -> MtomMessage:
    """An MTOM answer read with the soap layer's streaming parser, attachments to ``spool_dir``."""
    try:
        return await read_multipart(chunks, content_type, spool_dir, MAX_ROOT_BYTES)
    except SoapFault as fault:
        raise RepositoryFault(f"malformed MTOM answer: {fault.reason}") from None


def _envelope_body(root: bytes, content_type: str) -> Element:
    """The env:Body child of the SOAP 1.2 envelope ``root``.

    Raises RepositoryFault for a SOAP Fault, a media type that is not SOAP 1.2, or junk.
    """
    mime = parse_content_type(content_type)[0]
    if mime not in ("application/soap+xml", "application/xop+xml"):
        raise RepositoryFault(f"the answer is {mime or 'untyped'}, not SOAP 1.2")
    try:
        envelope = parse_envelope(parse_xml(root, max_bytes=MAX_ROOT_BYTES))
    except XmlError as exc:
        raise RepositoryFault(f"the answer is not XML: {exc}") from None
    except SoapFault as fault:
        raise RepositoryFault(f"malformed answer: {fault.reason}") from None
    if envelope.body.tag == qname(SOAP12_ENV, "Fault"):
        reason = envelope.body.findtext(f".//{{{SOAP12_ENV}}}Text") or "SOAP Fault"
        raise RepositoryFault(reason.strip())
    return envelope.body
