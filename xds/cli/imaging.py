"""``xds import-dicom``: store a directory of DICOM Part-10 files in the Imaging Document Source,
in this process (no server needed), as the C-STORE SCP would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xds.cli.options import DatabaseUrl, DataDir, settings_from, store_engine

if TYPE_CHECKING:
    from xds.config import Settings
    from xds.imaging.context import ImagingSource

__all__ = ["import_dicom", "local_source"]

#: Rejected files named in the summary; the rest are only counted.
_LISTED = 10


@contextmanager
def local_source(settings: Settings) -> Iterator[ImagingSource]:
    """The Imaging Document Source on the store of ``settings``, in this process (migrated)."""
    from xds.app import imaging_source

    engine = store_engine(settings)
    try:
        yield imaging_source(engine, settings)
    finally:
        engine.dispose()


def import_dicom(
    directory: Annotated[Path, typer.Argument(
        exists=True, file_okay=False, dir_okay=True, help="Directory to import, recursively.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    dicom_issuer: Annotated[str | None, typer.Option(
        envvar="XDS_DICOM_ISSUER",
        help="Assigning authority (OID) of Patient IDs that carry none (default: affinity domain).",
    )] = None,
) -> None:
    """Store every DICOM file under DIRECTORY (copied; the files are left in place) and index it.

    Files that are not complete DICOM instances are skipped and reported. Exits 1 when files
    were found but none could be stored, or when the store is full.
    """
    from xds.imaging.intake import NotDicomError, store_file
    from xds.store.blobs import StoreFull

    settings = settings_from(data_dir=data_dir, database_url=database_url,
                             dicom_issuer=dicom_issuer)
    with local_source(settings) as source:
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        studies: set[str] = set()
        stored = 0
        skipped: list[tuple[Path, str]] = []
        full: str | None = None
        console = Console(stderr=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("importing", total=len(files))
            for path in files:
                try:
                    instance = store_file(source, path)
                except NotDicomError as exc:
                    skipped.append((path, str(exc)))
                except StoreFull as exc:
                    full = str(exc)
                    break
                except OSError as exc:
                    skipped.append((path, f"cannot read: {exc}"))
                else:
                    stored += 1
                    studies.add(instance.study_instance_uid)
                bar.advance(task)
    typer.echo(f"stored {stored} instance(s) in {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}")
    if skipped:
        typer.echo(f"skipped {len(skipped)} file(s) that are not DICOM:")
        for path, reason in skipped[:_LISTED]:
            typer.echo(f"  {path}: {reason}")
        if len(skipped) > _LISTED:
            typer.echo(f"  ... and {len(skipped) - _LISTED} more")
    if full is not None:
        typer.echo(f"error: the store is full ({full}); import stopped", err=True)
        raise typer.Exit(1)
    if files and stored == 0:
        raise typer.Exit(1)
