"""ITI-18 Registry Stored Query (and ITI-51 Multi-Patient Query), registry side (ITI TF-2 §3.18)."""

from __future__ import annotations

import logging

from xds.audit.events import Outcome
from xds.audit.transactions import record_after
from xds.audit.xds_events import stored_query_event
from xds.ebrim.query import parse_adhoc_query_request
from xds.ebrim.response import adhoc_query_response, object_ref, render_stored
from xds.ebrim.rim import Element
from xds.ebrim.vocabulary import ResponseStatus, ReturnType
from xds.model.errors import ErrorCode, XdsError
from xds.registry.context import Registry
from xds.registry.querybase import fetch_xml, to_survivors
from xds.registry.queryparams import check_params, query_spec
from xds.registry.storedqueries import run_stored_query
from xds.store.db import read_connection

__all__ = ["stored_query"]

log = logging.getLogger("xds.registry.iti18")


def stored_query(registry: Registry, body: Element, *, multi_patient: bool = False) -> Element:
    """Answer the ``query:AdhocQueryRequest`` ``body`` with a ``query:AdhocQueryResponse``.

    Success holds the matching objects (LeafClass: as registered, with current status and the
    surviving patientId after a merge; ObjectRef: ``rim:ObjectRef`` ids only). Any XdsError
    becomes a Failure with its errors and an empty RegistryObjectList: XDSUnknownStoredQuery,
    XDSStoredQueryMissingParam, XDSStoredQueryParamNumber, XDSRegistryMetadataError (malformed
    value), XDSUnknownCommunity, XDSResultNotSinglePatient, XDSTooManyResults, XDSRegistryError
    (unusable request).
    ``multi_patient`` is the ITI-51 endpoint, which accepts only its two queries.
    """
    try:
        request = parse_adhoc_query_request(body)
        spec = query_spec(request.query_id, multi_patient=multi_patient)
        params = check_params(spec, request.slots)
        _check_home(registry, request.home or params.single("$homeCommunityId"))
        with read_connection(registry.engine) as conn:
            result = run_stored_query(params, conn, registry)
            leaf = request.return_type is ReturnType.LeafClass
            if leaf and spec.by_id:
                # Objects registered under a merged-away id are the survivor's (§3.18.4.1.2.3.9);
                # the patient-based queries answer under their patient already.
                result = to_survivors(conn, result)
            if leaf and spec.by_id and len(result.patient_ids()) > 1:
                raise XdsError(ErrorCode.XDSResultNotSinglePatient,
                               f"{spec.query.name} would return metadata of "
                               f"{len(result.patient_ids())} patients")
            rows = fetch_xml(conn, result) if leaf else []
    except XdsError as exc:
        text = "; ".join(f"{e.code} {e.context}" for e in exc.errors)
        log.info("ITI-18 failed: %s", text)
        _audit(registry, body, Outcome.SERIOUS_FAILURE, multi_patient, text)
        return adhoc_query_response([], exc.errors, ResponseStatus.Failure)
    except Exception as exc:
        _audit(registry, body, Outcome.MAJOR_FAILURE, multi_patient, type(exc).__name__)
        raise

    _audit(registry, body, Outcome.SUCCESS, multi_patient)
    log.info("ITI-18 %s %s: %d objects", spec.query.name, request.return_type.value,
             result.count())
    if not leaf:
        return adhoc_query_response(
            [object_ref(h.id) for h in (*result.document_entries, *result.submission_sets,
                                        *result.folders, *result.associations)])
    home = registry.settings.home_community_id or None
    return adhoc_query_response(
        render_stored(r.xml, r.status, last_update_time=r.last_update_time, home=home,
                      patient_id=r.patient_id)
        for r in rows)


def _audit(registry: Registry, body: Element, outcome: Outcome, multi_patient: bool,
           description: str = "") -> None:
    record_after(registry.engine, registry.settings, lambda: stored_query_event(
        registry.settings, body, outcome, multi_patient=multi_patient, description=description))


def _check_home(registry: Registry, home: str | None) -> None:
    """A request for another community than ours is refused (ITI TF-2 §3.18.4.1.2.3.8)."""
    ours = registry.settings.home_community_id
    if home and ours and home != ours:
        raise XdsError(ErrorCode.XDSUnknownCommunity,
                       f"homeCommunityId {home} is not this community ({ours})", location=home)
