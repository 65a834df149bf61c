"""``xds audit``: the local audit trail (the outbox of audit messages), newest first, and
whether each was sent to the Audit Record Repository."""

from __future__ import annotations

import datetime
import json
import re
import time
from typing import Annotated

import typer

from xds.cli.options import DatabaseUrl, DataDir, settings_from, store_engine

__all__ = ["app", "parse_since", "parse_duration"]

app = typer.Typer(no_args_is_help=True, help="The local audit trail (ATNA).")

#: EventID display names (DCM, CID 400).
_EVENT_NAMES = {
    "110100": "Application Activity", "110103": "DICOM Instances Accessed",
    "110104": "DICOM Instances Transferred", "110106": "Export", "110107": "Import",
    "110110": "Patient Record", "110112": "Query", "110113": "Security Alert",
    "110114": "User Authentication",
}
_OUTCOMES = {0: "success", 4: "minor failure", 8: "serious failure", 12: "major failure"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: float | None = None) -> float:
    """Epoch seconds of ``value``: a duration back from now (``90s``, ``15m``, ``1h``, ``2d``,
    ``1w``) or an ISO 8601 date/time (UTC unless it names an offset)."""
    if _DURATION.match(value.strip()):
        return (time.time() if now is None else now) - parse_duration(value)
    moment = datetime.datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def parse_duration(value: str) -> float:
    """Seconds of a duration such as ``90s``, ``15m``, ``1h``, ``2d``, ``1w``; ValueError else."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"not a duration (90s, 15m, 1h, 2d, 1w): {value!r}")
    return float(match[1]) * _UNITS[match[2]]


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="seconds")


@app.command("list")
def list_events(
    since: Annotated[str | None, typer.Option(
        help="Only events from then on: ISO date/time (UTC) or a duration back, e.g. 1h, 2d.")] = None,
    patient: Annotated[str | None, typer.Option(help="Only events about this patient (CX).")] = None,
    event: Annotated[str | None, typer.Option(
        help="Only this EventID (110112) or transaction (ITI-18).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, messages included.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List recorded audit events, newest first."""
    from rich.console import Console
    from rich.table import Table

    from xds.audit.trail import local_trail

    try:
        since_epoch = parse_since(since) if since else None
    except ValueError:
        typer.echo(f"error: --since {since!r} is neither ISO 8601 nor a duration like 1h", err=True)
        raise typer.Exit(2) from None
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    engine = store_engine(settings)
    rows = local_trail(engine, since=since_epoch, patient=patient, event=event, limit=limit)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps([{
            "id": r.id, "time": _iso(r.created), "event_id": r.event_id,
            "event": _EVENT_NAMES.get(r.event_id, ""), "event_type": r.event_type,
            "outcome": r.outcome, "patient": r.patient, "sent": _iso(r.sent) or None,
            "attempts": r.attempts, "message": r.message} for r in rows], indent=2))
        return
    table = Table("time (UTC)", "event", "type", "outcome", "patient", "sent")
    for r in rows:
        table.add_row(_iso(r.created), f"{r.event_id} {_EVENT_NAMES.get(r.event_id, '')}".strip(),
                      r.event_type or "", _OUTCOMES.get(r.outcome, str(r.outcome)),
                      r.patient or "", "yes" if r.sent is not None else "no")
    Console(width=200).print(table)


@app.command("prune")
def prune_events(
    sent_before: Annotated[str, typer.Option(
        help="Delete records the ARR took before then: ISO date/time (UTC) or a duration back, "
             "e.g. 90d.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete delivered records from the local trail (the ARR keeps them); records not yet
    delivered are never deleted."""
    from xds.audit.trail import prune

    try:
        before = parse_since(sent_before)
    except ValueError:
        typer.echo(f"error: --sent-before {sent_before!r} is neither ISO 8601 nor a duration",
                   err=True)
        raise typer.Exit(2) from None
    engine = store_engine(settings_from(data_dir=data_dir, database_url=database_url))
    removed = prune(engine, sent_before=before)
    engine.dispose()
    typer.echo(f"deleted {removed} delivered audit record(s) sent before {_iso(before)}")
