"""What a consumer client did, one transaction at a time, for whoever keeps an audit trail of
it (``xds.audit.clients``): the clients report a ``Step`` per exchange to an ``OnStep``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from xds.model.errors import RegistryError

__all__ = ["Step", "OnStep", "failure_text", "answered"]


@dataclass(frozen=True, slots=True)
class Step:
    """One exchange: ``transaction`` (ITI-18, ITI-51, ITI-43, RAD-69) with ``url``.

    ITI-18/51: ``query`` is the query:AdhocQueryRequest sent. ITI-43: ``documents`` the
    (repositoryUniqueId, documentUniqueId, homeCommunityId) asked for. RAD-69: ``instances``
    the (study, series, SOP Instance UID) asked for, of ``patient`` from the source
    ``source_id``. ``delivered``: the uniqueIds that came back; ``status`` the answer's
    status URN; ``failure`` why the exchange itself failed (no answer, a SOAP Fault).
    """

    transaction: str
    url: str
    query: etree._Element | None = None
    documents: tuple[tuple[str, str, str | None], ...] = ()
    instances: tuple[tuple[str, str, str], ...] = ()
    patient: str = ""
    source_id: str = ""
    delivered: frozenset[str] = frozenset()
    status: str = ""
    errors: tuple[RegistryError, ...] = ()
    failure: str = ""


#: Called after each exchange of a client, whether it succeeded or not.
OnStep = Callable[[Step], None]


def failure_text(exc: BaseException) -> str:
    """How an exchange failed, for a Step: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"[:1000]


def answered(step: Step, response: etree._Element) -> Step:
    """``step`` (a query) with the status and RegistryErrors of its AdhocQueryResponse."""
    from xds.clients.source import RepositoryFault, registry_response_of

    status = response.get("status", "")
    try:
        errors = tuple(registry_response_of(response).errors)
    except RepositoryFault:  # a status no registry should send: no errors to read either
        errors = ()
    return dataclasses.replace(step, status=status, errors=errors)
