"""``xds blobs``: upkeep of the document store — fixity (verify), garbage (gc), bucket (init)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xds.cli.audit import parse_duration
from xds.cli.options import BlobUrl, DatabaseUrl, DataDir, blob_store, settings_from, store_engine
from xds.config import Settings
from xds.store.blobs import BlobStore, StoreUnavailable

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Upkeep of the document store (fixity, garbage).")
_out = Console()
_err = Console(stderr=True)


def _open(data_dir: object, database_url: str | None, blob_url: str | None) \
        -> tuple[Settings, BlobStore]:
    settings = settings_from(data_dir=data_dir, database_url=database_url, blob_url=blob_url)
    return settings, blob_store(settings)


def _bar(what: str) -> Progress:
    return Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=_err, transient=True)


@app.command()
def verify(
    sample: Annotated[int | None, typer.Option(
        help="Check this many blobs chosen at random (default: every blob a row refers to).",
        min=1)] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
) -> None:
    """Re-read stored documents and DICOM instances and check each against its recorded
    SHA-256 (its address), size and SHA-1; exit 1 if any is missing or corrupt."""
    from xds.store.maintenance import count_blobs, verify_blobs

    settings, blobs = _open(data_dir, database_url, blob_url)
    engine = store_engine(settings)
    try:
        total = count_blobs(engine)
        with _bar("verifying") as bar:
            task = bar.add_task("verify", total=min(total, sample) if sample else total)
            report = verify_blobs(engine, blobs, sample=sample,
                                  progress=lambda n: bar.advance(task, n))
    finally:
        engine.dispose()
    for problem in report.problems:
        _out.print(f"[red]{problem.kind}[/red] {problem.sha256}: {problem.detail}")
    _out.print(f"checked {report.checked} of {total} blobs ({report.bytes_read:,} bytes) in "
               f"{blobs.describe()}: {len(report.problems)} problem(s)")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def gc(
    grace: Annotated[str, typer.Option(
        help="Spare objects younger than this (90s, 15m, 1h, 2d): a submission in flight may "
             "still commit to them.")] = "1h",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Report what would be removed; remove nothing.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_url: BlobUrl = None,
) -> None:
    """Remove stored objects that no row refers to (left by a crash between upload and
    commit), unfinished uploads and temp files older than --grace, and the rows of documents
    never registered (a crash before ITI-42) older than --grace and 15 minutes."""
    from xds.store.maintenance import collect_garbage

    try:
        seconds = parse_duration(grace)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--grace") from None
    settings, blobs = _open(data_dir, database_url, blob_url)
    engine = store_engine(settings)
    try:
        with _bar("scanning") as bar:
            task = bar.add_task("gc", total=None)
            report = collect_garbage(engine, blobs, grace=seconds, dry_run=dry_run,
                                     registry_is_local=not settings.registry_url,
                                     spool_dir=settings.spool_dir,
                                     progress=lambda n: bar.advance(task, n))
    except StoreUnavailable as exc:
        _err.print(f"xds blobs gc: {exc}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    verb = "would remove" if dry_run else "removed"
    for sha in report.removed_keys:
        _out.print(f"{verb} {sha}")
    _out.print(f"scanned {report.scanned} objects in {blobs.describe()}: {report.referenced} "
               f"referenced, {report.young} younger than {grace}, {verb} {report.removed} "
               f"({report.removed_bytes:,} bytes); {report.unfinished} unfinished upload(s) or "
               f"temp file(s) and {report.unregistered_rows} never-registered document row(s) "
               "removed")


@app.command()
def init(
    data_dir: DataDir = None,
    blob_url: BlobUrl = None,
) -> None:
    """Create the S3 bucket of --blob-url if it does not exist, then check it can be written."""
    from xds.store.s3 import S3BlobStore

    _settings, blobs = _open(data_dir, None, blob_url)
    try:
        if isinstance(blobs, S3BlobStore):
            blobs.ensure_bucket()
        blobs.check()
    except StoreUnavailable as exc:
        _err.print(f"xds blobs init: {exc}")
        raise typer.Exit(1) from None
    _out.print(f"blob store ready: {blobs.describe()}")
