"""Publish a study's manifest: build the KOS, send RAD-68 (ITI-41) to the Document Repository,
record the outcome; a later revision of the study replaces the manifest (RPLC)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xds.audit.events import AuditEvent, Outcome
from xds.audit.imaging_events import publish_event
from xds.audit.transactions import record_after, record_in
from xds.clients.source import provide_and_register
from xds.dicom.part10 import to_part10
from xds.imaging.archive import ArchiveError, index_archive_study
from xds.imaging.context import ImagingSource
from xds.imaging.kos import build_manifest
from xds.imaging.rad68 import PublishError, manifest_submission, resolve_patient
from xds.model.values import now_dtm
from xds.security.credentials import Credentials
from xds.store.db import read_connection, write_transaction
from xds.store.instances import (
    Instance, record_publication, record_publish_error, study_instances, study_state,
)

__all__ = ["PublishError", "PublishResult", "publish_study", "repository_url_of"]

log = logging.getLogger("xds.imaging.publish")


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The manifest of a study after ``publish_study``."""

    study_instance_uid: str
    #: SOP Instance UID of the KOS (= DocumentEntry.uniqueId).
    kos_sop_instance_uid: str
    #: entryUUID of the manifest's DocumentEntry.
    entry_uuid: str
    #: Instances the manifest references.
    instances: int
    #: entryUUID of the manifest this one replaced (RPLC), None for a first one.
    replaced_entry_uuid: str | None = None
    #: True when nothing changed since the published manifest, so nothing was sent.
    up_to_date: bool = False


def repository_url_of(source: ImagingSource, repository_url: str | None = None) -> str:
    """Where RAD-68 goes: ``repository_url``, else the configured one, else this server's."""
    return repository_url or source.settings.imaging_repository_url or \
        source.settings.base_url + "/xds/repository"


def publish_study(source: ImagingSource, study_uid: str, *, repository_url: str | None = None,
                  credentials: Credentials | None = None) -> PublishResult:
    """Publish (or replace) the manifest of ``study_uid`` unless it is up to date.

    RAD-68 carries ``credentials`` (default: this node's client certificate, from settings).

    With an external archive configured, its instances of the study are indexed first.
    Raises PublishError when the study has no instances (nothing is sent), when the patient has
    no affinity-domain id, or when the repository refuses the submission (the message names the
    registry's error codes); the error is recorded in the study's state (if it has one), so the
    quiet-period publisher skips it until the study changes.
    """
    if source.archive is not None:
        # Images held by the external archive: index what it has of the study now.
        try:
            index_archive_study(source, study_uid)
        except ArchiveError as exc:
            raise PublishError(str(exc)) from exc
    with read_connection(source.engine) as conn:
        # The revision before the instances: what arrives meanwhile makes the study due again.
        state = study_state(conn, study_uid)
        items = study_instances(conn, study_uid)
    if state is None or not items:
        message = f"study {study_uid} has no instances"
        if state is not None:  # its instances moved away: not due again until it changes
            _record_error(source, study_uid, message)
        raise PublishError(message)
    if not state.needs_publishing and state.kos_sop_instance_uid and state.kos_entry_uuid:
        return PublishResult(study_uid, state.kos_sop_instance_uid, state.kos_entry_uuid,
                             len(items), up_to_date=True)
    try:
        return _publish(source, study_uid, state.revision, state.kos_entry_uuid, items,
                        repository_url_of(source, repository_url),
                        credentials or Credentials.of_settings(source.settings))
    except PublishError as exc:
        _record_error(source, study_uid, str(exc))
        raise
    except Exception as exc:
        message = f"publishing study {study_uid} failed: {type(exc).__name__}: {exc}"
        _record_error(source, study_uid, message)
        raise PublishError(message) from exc


def _publish(source: ImagingSource, study_uid: str, revision: int, replaces: str | None,
             items: list[Instance], url: str, credentials: Credentials) -> PublishResult:
    patient_cx = resolve_patient(source, items[0])
    manifest = build_manifest(source, study_uid, items)
    submission = manifest_submission(source, manifest, items, patient_cx,
                                     replaces_entry_uuid=replaces)
    entry = submission.document_entries[0]
    spool = source.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="kos-", suffix=".dcm", dir=spool)
    path = Path(name)
    settings = source.settings
    set_uid = submission.submission_set.unique_id or ""

    def audit(outcome: Outcome, text: str = "") -> Callable[[], AuditEvent]:
        return lambda: publish_event(settings, url, patient_cx, set_uid, outcome,
                                     description=text)

    try:
        with os.fdopen(fd, "wb") as f:
            f.write(to_part10(manifest))
        response = provide_and_register(url, submission, [path], credentials=credentials)
    except Exception as exc:
        record_after(source.engine, settings, audit(Outcome.MAJOR_FAILURE,
                                                    f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        path.unlink(missing_ok=True)
    if not response.success:
        codes = ", ".join(f"{e.code}: {e.context}" for e in response.errors) or "no error given"
        record_after(source.engine, settings, audit(Outcome.SERIOUS_FAILURE, codes))
        raise PublishError(f"the repository refused the manifest of study {study_uid} "
                           f"({response.status.name}): {codes}")
    kos_uid = str(manifest.SOPInstanceUID)
    with write_transaction(source.engine) as conn:
        record_publication(conn, study_uid, revision=revision, kos_uid=kos_uid,
                           entry_uuid=entry.entry_uuid, published=now_dtm(), patient_cx=patient_cx)
        record_in(conn, settings, audit(Outcome.SUCCESS))
    log.info("published manifest %s of study %s (%d instances%s)", kos_uid, study_uid, len(items),
             f", replacing {replaces}" if replaces else "")
    return PublishResult(study_uid, kos_uid, entry.entry_uuid, len(items), replaces)


def _record_error(source: ImagingSource, study_uid: str, message: str) -> None:
    try:
        with write_transaction(source.engine) as conn:
            record_publish_error(conn, study_uid, message)
    except Exception:  # the original error matters more
        log.exception("could not record the publication error of study %s", study_uid)
