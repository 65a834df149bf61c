"""``xds patient``: the affinity domain's known patient ids (until the identity feed exists)."""

from __future__ import annotations

from typing import Annotated

import typer

from xds.cli.options import DatabaseUrl, DataDir, settings_from
from xds.model.values import CX

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Known patients of the affinity domain.")


@app.command("add")
def add(
    patient_id: Annotated[str, typer.Argument(help="CX, e.g. '12345^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make PATIENT_ID known, so ITI-42 submissions for it are accepted."""
    from xds.store.db import migrate, open_engine
    from xds.store.patients import add_patient

    settings = settings_from(data_dir=data_dir, database_url=database_url)
    cx = CX.parse(patient_id)
    if cx is None:
        typer.echo(f"error: {patient_id!r} is not a CX of the form ID^^^&OID&ISO", err=True)
        raise typer.Exit(2)
    if cx.assigning_authority != settings.affinity_domain:
        typer.echo(f"error: assigning authority {cx.assigning_authority} is not the affinity "
                   f"domain's ({settings.affinity_domain}; set XDS_AFFINITY_DOMAIN)", err=True)
        raise typer.Exit(2)
    engine = open_engine(settings)
    migrate(engine)
    added = add_patient(engine, patient_id)
    typer.echo(f"{'added' if added else 'already known'}: {patient_id}")
