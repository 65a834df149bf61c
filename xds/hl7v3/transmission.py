"""The HL7 v3 transmission wrapper (MCCI_MT000100/200/300UV01): message id, creation time,
interaction id, processing codes, sender and receiver devices (ITI TF-2b §3.44.4.1.2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from ..config import Settings
from .codes import INTERACTION_ID_ROOT
from .datatypes import II, add_ii, add_ts, find, is_uid, new_message, read_ii, sub, ts_now

__all__ = ["DEFAULT_DEVICE_ID", "Transmission", "device_id", "read_transmission", "transmission"]

#: Default sender/device/id/@root of this process's v3 applications (``Settings.pix_device_id``).
DEFAULT_DEVICE_ID = Settings().pix_device_id


def device_id(settings: Settings) -> str:
    """The device id (OID) this process sends as, and names as custodian of PIX answers."""
    return settings.pix_device_id or DEFAULT_DEVICE_ID


@dataclass(frozen=True, slots=True)
class Transmission:
    """What a received message's wrapper says: its id and the devices it names (None if absent)."""

    id: II | None
    interaction: str | None
    sender: II | None
    receiver: II | None


def read_transmission(message: etree._Element) -> Transmission:
    """The wrapper fields of ``message``, read leniently (a message that failed validation
    too); an id whose root is no valid uid is None, so that echoing it keeps answers valid."""

    def ii(path: str) -> II | None:
        el = find(message, path)
        value = read_ii(el) if el is not None else None
        return value if value is not None and value.root and is_uid(value.root) else None

    interaction = ii("interactionId")
    return Transmission(
        id=ii("id"),
        interaction=interaction.extension if interaction is not None else None,
        sender=ii("sender/device/id"),
        receiver=ii("receiver/device/id"),
    )


def transmission(interaction: str, *, sender: str, receiver: II | None,
                 accept_ack: str = "NE") -> etree._Element:
    """The root of a new ``interaction`` message up to and including its sender: a fresh UUID
    id, now as creationTime, processingCode P (production), processingModeCode T (current
    processing), ``accept_ack`` (AL for requests, NE for answers) and the two devices.

    >>> msg = transmission("MCCI_IN000002UV01", sender="1.2.3", receiver=request.sender)
    """
    root = new_message(interaction)
    add_ii(root, "id", str(uuid.uuid4()))
    add_ts(root, "creationTime", ts_now())
    add_ii(root, "interactionId", INTERACTION_ID_ROOT, interaction)
    sub(root, "processingCode", {"code": "P"})
    sub(root, "processingModeCode", {"code": "T"})
    sub(root, "acceptAckCode", {"code": accept_ack})
    _device(root, "receiver", "RCV", receiver)
    _device(root, "sender", "SND", II(root=sender))
    return root


def _device(root: etree._Element, local: str, type_code: str, ident: II | None) -> None:
    party = sub(root, local, {"typeCode": type_code})
    device = sub(party, "device", {"classCode": "DEV", "determinerCode": "INSTANCE"})
    if ident is None or ident.root is None:
        add_ii(device, "id", None)
    else:
        add_ii(device, "id", ident.root, ident.extension)
