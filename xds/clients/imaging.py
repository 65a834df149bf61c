"""Imaging Document Consumer (XDS-I.b): find a patient's or a study's KOS manifests (ITI-18),
fetch them (ITI-43), and retrieve every referenced instance with RAD-69 into Part-10 files.

Each instance streams from the MTOM answer into its file; memory does not grow with study size.
``on_step`` sees each of those exchanges (``xds.clients.steps``), for an audit trail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from lxml import etree

from xds.actions import Action
from xds.clients.consumer import (
    DocumentConsumer, RegistryFault, adhoc_query_request, multi_patient_query, quote, quote_list,
)
from xds.clients.retrieve import RetrieveDocumentSetResponse, post_retrieve, retrieve
from xds.clients.source import Progress, _addressing
from xds.clients.steps import OnStep, Step, answered, failure_text
from xds.dicom.uids import DCMUID_SCHEME, EXPLICIT_LE, IMPLICIT_LE, KOS_SOP_CLASS
from xds.ebrim.documententry import parse_document_entry
from xds.ebrim.rim import RIM
from xds.ebrim.vocabulary import NS_RAD, NS_XDS, ResponseStatus, StoredQuery
from xds.imaging.kos import parse_manifest
from xds.imaging.rad68 import ACCESSION_TYPE, STUDY_UID_TYPE
from xds.model.errors import ErrorCode, RegistryError
from xds.model.metadata import DocumentEntry
from xds.security.credentials import NO_CREDENTIALS, Credentials
from xds.soap import build_envelope

__all__ = [
    "DEFAULT_SYNTAXES", "FetchResult", "find_manifests",
    "retrieve_imaging_request", "retrieve_instances", "fetch",
]

_APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
_RAD = f"{{{NS_RAD}}}"
_XDS = f"{{{NS_XDS}}}"
#: Transfer syntaxes asked for by default: any uncompressed one the source holds or converts to.
DEFAULT_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE)


@dataclass(slots=True)
class FetchResult:
    """What ``fetch`` did: manifests read, instances saved, and what went wrong."""

    manifests: list[str] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    errors: list[RegistryError] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def find_manifests(registry_url: str, patient_id: str | None, *, study_uid: str | None = None,
                   accession: str | None = None,
                   class_code: str = "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1",
                   credentials: Credentials = NO_CREDENTIALS,
                   on_step: OnStep | None = None) -> list[DocumentEntry]:
    """Approved KOS DocumentEntries of ``patient_id`` (ITI-18), of one study or accession when
    given (FindDocumentsByReferenceId). Without a patient id (a study or accession is then
    needed) ITI-51 FindDocumentsForMultiplePatients finds the KOS entries of ``class_code``
    (``code^^scheme``; ITI-51 needs a patient, class, event or facility filter), filtered here
    by referenceIdList. Raises RegistryFault when the registry answers Failure."""
    params: list[tuple[str, Sequence[str]]] = [
        ("$XDSDocumentEntryStatus", [quote_list([_APPROVED])]),
        ("$XDSDocumentEntryFormatCode", [quote_list([f"{KOS_SOP_CLASS}^^{DCMUID_SCHEME}"])]),
    ]
    if patient_id is None:
        if not study_uid and not accession:
            raise ValueError("a patient id, a study UID or an accession number is needed")
        params.append(("$XDSDocumentEntryClassCode", [quote_list([class_code])]))
        multi = StoredQuery.FindDocumentsForMultiplePatients
        step = Step("ITI-51", registry_url, query=adhoc_query_request(multi, params))
        response = _queried(on_step, step, lambda: multi_patient_query(
            registry_url, multi, params, credentials=credentials))
        return [e for e in _entries(response) if _refers_to(e, study_uid, accession)]
    params.insert(0, ("$XDSDocumentEntryPatientId", [quote(patient_id)]))
    query = StoredQuery.FindDocuments
    if study_uid or accession:
        query = StoredQuery.FindDocumentsByReferenceId
        refs = [f"{study_uid}^^^^{STUDY_UID_TYPE}"] if study_uid else [
            f"{accession}^^^^{ACCESSION_TYPE}"]
        params.append(("$XDSDocumentEntryReferenceIdList", [quote_list(refs)]))
    consumer = DocumentConsumer(registry_url, credentials=credentials)
    response = _queried(on_step, Step("ITI-18", registry_url),
                        lambda: consumer.stored_query(query, params), consumer)
    entries = _entries(response)
    if accession and not entries:
        # An accession with an issuer is registered as ACC^^^&OID&ISO^type: match on id and type.
        entries = [e for e in find_manifests(registry_url, patient_id, credentials=credentials,
                                             on_step=on_step)
                   if _refers_to(e, None, accession)]
    return entries


def _queried(on_step: OnStep | None, step: Step, call: Callable[[], etree._Element],
             consumer: DocumentConsumer | None = None) -> etree._Element:
    """``call()`` (an ITI-18/51 query) reported to ``on_step`` however it ends; the query sent
    is ``step.query``, else the ``consumer``'s last request."""
    def sent() -> Step:
        if step.query is None and consumer is not None:
            return dataclasses.replace(step, query=consumer.last_request)
        return step
    try:
        response = call()
    except Exception as exc:
        if on_step is not None:
            on_step(dataclasses.replace(sent(), failure=failure_text(exc)))
        raise
    if on_step is not None:
        on_step(answered(sent(), response))
    return response


def _entries(response: etree._Element) -> list[DocumentEntry]:
    if response.get("status", "").endswith(":Failure"):
        errors = response.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryError")
        raise RegistryFault("; ".join(f"{e.get('errorCode')}: {e.get('codeContext')}"
                                      for e in errors) or "the registry answered Failure")
    return [parse_document_entry(eo) for eo in response.iter(RIM + "ExtrinsicObject")]


def _refers_to(entry: DocumentEntry, study_uid: str | None, accession: str | None) -> bool:
    """True when ``entry``'s referenceIdList names the study (and the accession, if given)."""
    refs = entry.reference_id_list
    if study_uid and f"{study_uid}^^^^{STUDY_UID_TYPE}" not in refs:
        return False
    return not accession or any(
        r.split("^")[0] == accession and r.endswith("^" + ACCESSION_TYPE) for r in refs)


def retrieve_imaging_request(url: str, source_unique_id: str,
                             studies: Mapping[str, Mapping[str, Sequence[str]]],
                             transfer_syntaxes: Sequence[str] = DEFAULT_SYNTAXES,
                             credentials: Credentials = NO_CREDENTIALS) -> bytes:
    """The RAD-69 envelope for ``studies`` (study UID -> series UID -> SOP Instance UIDs)."""
    body = etree.Element(_RAD + "RetrieveImagingDocumentSetRequest",
                         nsmap={"iherad": NS_RAD, "xdsb": NS_XDS})
    for study_uid, series in studies.items():
        study_el = etree.SubElement(body, _RAD + "StudyRequest", studyInstanceUID=study_uid)
        for series_uid, sops in series.items():
            series_el = etree.SubElement(study_el, _RAD + "SeriesRequest",
                                         seriesInstanceUID=series_uid)
            for sop in sops:
                request = etree.SubElement(series_el, _XDS + "DocumentRequest")
                etree.SubElement(request, _XDS + "RepositoryUniqueId").text = source_unique_id
                etree.SubElement(request, _XDS + "DocumentUniqueId").text = sop
    syntaxes = etree.SubElement(body, _RAD + "TransferSyntaxUIDList")
    for ts in transfer_syntaxes:
        etree.SubElement(syntaxes, _RAD + "TransferSyntaxUID").text = ts
    return build_envelope(body, action=Action.RetrieveImagingDocumentSet,
                          headers=_addressing(url) + credentials.soap_headers())


def retrieve_instances(url: str, source_unique_id: str,
                       references: Sequence[tuple[str, str, str]], out_dir: Path, *,
                       transfer_syntaxes: Sequence[str] = DEFAULT_SYNTAXES,
                       progress: Progress | None = None, timeout: float = 3600.0,
                       credentials: Credentials = NO_CREDENTIALS) -> RetrieveDocumentSetResponse:
    """RAD-69 for ``references`` (study, series, SOP Instance UID) from the Imaging Document
    Source at ``url``; files ``out_dir/<study>/<series>/<sop>.dcm``. The ITI-43-shaped answer."""
    studies: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    targets: dict[tuple[str, str], Path] = {}
    for study, series, sop in references:
        studies[study][series].append(sop)
        targets[(source_unique_id, sop)] = out_dir / study / series / f"{sop}.dcm"
    envelope = retrieve_imaging_request(url, source_unique_id, studies, transfer_syntaxes,
                                        credentials)
    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(post_retrieve(url, envelope, targets, out_dir, progress, timeout,
                                     credentials.verify()))


def fetch(registry_url: str, patient_id: str | None, out_dir: Path, *,
          sources: Mapping[str, str], repositories: Mapping[str, str],
          study_uid: str | None = None, accession: str | None = None,
          transfer_syntaxes: Sequence[str] = DEFAULT_SYNTAXES,
          class_code: str = "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1",
          progress: Progress | None = None,
          on_manifest: Callable[[str, int], None] | None = None,
          credentials: Credentials = NO_CREDENTIALS,
          on_step: OnStep | None = None) -> FetchResult:
    """The whole Imaging Document Consumer loop: ITI-18, ITI-43 per manifest, RAD-69 per source.

    ``sources`` maps an Imaging Document Source's repositoryUniqueId (the KOS
    RetrieveLocationUID) to its RAD-69 URL; ``repositories`` a Document Repository's
    repositoryUniqueId to its ITI-43 URL. References to an unknown source are listed in
    ``missing``. Every request carries ``credentials``; ``on_step`` sees every exchange.
    Raises RegistryFault, RepositoryFault, httpx.HTTPError.
    """
    result = FetchResult()
    entries = find_manifests(registry_url, patient_id, study_uid=study_uid, accession=accession,
                             class_code=class_code, credentials=credentials, on_step=on_step)
    with tempfile.TemporaryDirectory(prefix="xds-kos-") as tmp:
        for entry in entries:
            repository_url = repositories.get(entry.repository_unique_id or "")
            if repository_url is None or entry.unique_id is None:
                result.errors.append(RegistryError(
                    code=ErrorCode.XDSUnknownRepositoryId, location=entry.unique_id or "",
                    context=f"no URL configured for repository {entry.repository_unique_id}"))
                continue
            kos_path = Path(tmp) / f"{len(result.manifests)}.dcm"
            wanted = ((entry.repository_unique_id or "", entry.unique_id, None),)
            answer = _retrieved(on_step, Step("ITI-43", repository_url, documents=wanted),
                                partial(retrieve, repository_url, wanted, [kos_path],
                                        credentials=credentials))
            result.errors.extend(answer.errors)
            if answer.status == ResponseStatus.Failure or not kos_path.exists():
                continue
            manifest = parse_manifest(kos_path)
            if study_uid and manifest.study_instance_uid != study_uid:
                continue
            result.manifests.append(entry.unique_id)
            result.studies.add(manifest.study_instance_uid)
            by_source: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
            for ref in manifest.references:
                by_source[ref.retrieve_location_uid or ""].append(
                    (ref.study_instance_uid, ref.series_instance_uid, ref.sop_instance_uid))
            if on_manifest is not None:
                on_manifest(manifest.study_instance_uid, len(manifest.references))
            for location, refs in by_source.items():
                url = sources.get(location)
                if url is None:
                    result.missing.extend(sop for _, _, sop in refs)
                    continue
                step = Step("RAD-69", url, instances=tuple(refs), patient=entry.patient_id or "",
                            source_id=location)
                got = _retrieved(on_step, step, partial(
                    retrieve_instances, url, location, refs, out_dir,
                    transfer_syntaxes=transfer_syntaxes, progress=progress,
                    credentials=credentials))
                result.errors.extend(got.errors)
                for doc in got.documents:
                    result.files.append(doc.path)
                    result.bytes += doc.size
    return result


def _retrieved(on_step: OnStep | None, step: Step,
               call: Callable[[], RetrieveDocumentSetResponse]) -> RetrieveDocumentSetResponse:
    """``call()`` (an ITI-43 or RAD-69 retrieve) reported to ``on_step`` however it ends."""
    try:
        answer = call()
    except Exception as exc:
        if on_step is not None:
            on_step(dataclasses.replace(step, failure=failure_text(exc)))
        raise
    if on_step is not None:
        on_step(dataclasses.replace(
            step, status=str(answer.status), errors=tuple(answer.errors),
            delivered=frozenset(d.document_unique_id for d in answer.documents)))
    return answer
