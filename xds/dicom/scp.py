"""The Imaging Document Source's DICOM C-STORE SCP (intake) and Verification SCP (C-ECHO).

A pynetdicom AE listens on (host, dicom_port) and accepts associations called
``dicom_ae_title`` only. Received datasets are written by pynetdicom straight to a temporary
Part-10 file (``STORE_RECV_CHUNKED_DATASET``), in ``settings.spool_dir`` (same file system as
the blob store, so adopting it is a rename), and moved into the store by ``store_file``.

C-STORE statuses:

* 0x0000 stored (a resend of an instance already stored replaces it; identical bytes are a no-op);
* 0xA900 "Data Set does not match SOP Class": the dataset's SOP Class/Instance UID differ from
  the request's, or it lacks a UID indexing needs (Study, Series, SOP Instance, SOP Class);
* 0xC210 (in "Cannot understand", C000-CFFF; pynetdicom's code for an undecodable dataset):
  the dataset cannot be parsed;
* 0xA700 "Out of Resources": the store is full;
* 0xC000 "Cannot understand": any other error (logged; the SCP keeps running).
"""

from __future__ import annotations

import logging
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
    ImplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless,
    JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, _config, dimse_messages, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from xds.audit.events import Outcome, RequestInfo
from xds.audit.imaging_events import InstanceRef, stored_event
from xds.audit.transactions import record_after, with_request
from xds.dicom.part10 import NotDicomError, read_header
from xds.dicom.tls_server import start_tls_server
from xds.imaging.context import ImagingSource
from xds.imaging.intake import store_file
from xds.mpi.model import PatientIdentifier
from xds.security.accept import OnRefused
from xds.store.blobs import StoreFull
from xds.store.instances import Instance

__all__ = ["StorageScp", "start_storage_scp", "TRANSFER_SYNTAXES"]

log = logging.getLogger("xds.dicom.scp")

TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless,
]

# Datasets go to a temporary file, never whole into memory.
_config.STORE_RECV_CHUNKED_DATASET = True
#: AE -> its spool directory. pynetdicom names no directory for its temporary files, so its
#: NamedTemporaryFile is wrapped: it runs in the association's DUL thread, which knows its AE.
_SPOOLS: dict[AE, Path] = {}


def _spooled_file(*args: Any, **kwargs: Any) -> Any:
    assoc = getattr(threading.current_thread(), "assoc", None)
    spool = _SPOOLS.get(assoc.ae) if assoc is not None else None
    if spool is not None:
        kwargs.setdefault("dir", spool)
    return tempfile.NamedTemporaryFile(*args, **kwargs)


dimse_messages.NamedTemporaryFile = _spooled_file  # type: ignore[attr-defined]


class StorageScp:
    """A running SCP; ``shutdown`` closes its port and aborts open associations."""

    def __init__(self, ae: AE, server: ThreadedAssociationServer) -> None:
        self.ae = ae
        self.server = server

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def shutdown(self) -> None:
        self.ae.shutdown()
        _SPOOLS.pop(self.ae, None)


def start_storage_scp(source: ImagingSource, *, ssl_context: ssl.SSLContext | None = None,
                      on_refused: OnRefused | None = None) -> StorageScp:
    """Listen for C-STORE and C-ECHO on (host, dicom_port); raises OSError if the port is taken.

    With ``ssl_context`` every association starts with a TLS handshake (DICOM TLS); a refused
    one is logged and passed to ``on_refused``."""
    settings = source.settings
    ae = AE(ae_title=settings.dicom_ae_title)
    ae.require_called_aet = True
    ae.maximum_pdu_size = 1024 * 1024
    ae.maximum_associations = 32
    for context in AllStoragePresentationContexts:  # 170: an SCP may support more than 128
        ae.add_supported_context(cast(str, context.abstract_syntax), TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    _SPOOLS[ae] = settings.spool_dir
    handlers: list[EventHandlerType] = [(evt.EVT_C_STORE, _on_store, [source]),
                                        (evt.EVT_CONN_CLOSE, _on_close)]
    try:
        address = (settings.host, settings.dicom_port)
        if ssl_context is None:
            server = cast(ThreadedAssociationServer, ae.start_server(
                address, block=False, evt_handlers=handlers))
        else:
            server = start_tls_server(ae, address, ssl_context, on_refused, handlers)
    except BaseException:
        _SPOOLS.pop(ae, None)
        raise
    return StorageScp(ae, server)


def _on_store(event: Event, source: ImagingSource) -> int | Dataset:
    """Store one received instance and audit it (Instances Transferred C, from the calling AE)."""
    stored: list[Instance] = []
    status = _store(event, source, stored)
    try:
        _audit(event, source, stored, status)
    except Exception:  # auditing never changes the C-STORE status
        log.exception("C-STORE audit failed")
    return status


def _audit(event: Event, source: ImagingSource, stored: list[Instance],
           status: int | Dataset) -> None:
    request = cast(C_STORE, event.request)
    settings = source.settings
    calling = event.assoc.requestor
    info = RequestInfo(client=str(calling.address),
                       endpoint=f"dicom://{settings.host}:{settings.dicom_port}",
                       client_endpoint=str(calling.ae_title).strip())
    if stored:
        i = stored[0]
        patient = PatientIdentifier(i.patient_issuer, i.patient_id).cx if i.patient_id else ""
        ref = InstanceRef(i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid,
                          patient, source.unique_id)
    else:
        ref = InstanceRef("", sop_uid=str(request.AffectedSOPInstanceUID or ""))
    failed = isinstance(status, Dataset)
    outcome = Outcome.SERIOUS_FAILURE if failed else Outcome.SUCCESS
    text = str(getattr(status, "ErrorComment", "")) if failed else ""
    record_after(source.engine, settings, with_request(info, lambda: stored_event(
        settings, ref, outcome, description=text)))


def _store(event: Event, source: ImagingSource, stored: list[Instance]) -> int | Dataset:
    path = Path(event.dataset_path)
    request = cast(C_STORE, event.request)
    try:
        header = read_header(path)
        for keyword, expected in (("SOPInstanceUID", request.AffectedSOPInstanceUID),
                                  ("SOPClassUID", request.AffectedSOPClassUID)):
            if header.uid(keyword) != str(expected):
                return _failure(0xA900, f"{keyword} {header.uid(keyword)} is not {expected}")
        stored.append(store_file(source, path, move=True))
        return 0x0000
    except NotDicomError as exc:
        # read_header's message for a missing or malformed UID; anything else is undecodable.
        return _failure(0xA900 if "not a valid UID" in str(exc) else 0xC210, str(exc))
    except StoreFull as exc:
        log.error("C-STORE of %s refused: %s", request.AffectedSOPInstanceUID, exc)
        return _failure(0xA700, "out of resources: the store is full")
    except Exception as exc:
        log.exception("C-STORE of %s failed", request.AffectedSOPInstanceUID)
        return _failure(0xC000, f"{type(exc).__name__}: {exc}")
    finally:
        path.unlink(missing_ok=True)  # moved into the store on success


def _on_close(event: Event) -> None:
    """Remove the temporary file of a dataset whose transfer the connection cut short."""
    message = getattr(event.assoc.dimse, "message", None)
    partial = getattr(message, "_data_set_file", None)
    if partial is not None:
        partial.close()
        Path(partial.name).unlink(missing_ok=True)


def _failure(status: int, comment: str) -> Dataset:
    log.info("C-STORE failed (0x%04X): %s", status, comment)
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds
