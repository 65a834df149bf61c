"""``xds patient``: the affinity domain's known patient ids, and the master patient index's view
of a patient (identifiers per domain, demographics, history)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from xds.cli.options import DatabaseUrl, DataDir, settings_from, store_engine
from xds.model.values import CX

if TYPE_CHECKING:
    from xds.mpi.index import PatientIndex
    from xds.mpi.model import Person

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Known patients of the affinity domain.")


@app.command("add")
def add(
    patient_id: Annotated[str, typer.Argument(help="CX, e.g. '12345^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make PATIENT_ID known, so ITI-42 submissions for it are accepted."""
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
    engine = store_engine(settings)
    added = add_patient(engine, patient_id)
    typer.echo(f"{'added' if added else 'already known'}: {patient_id}")


def _index(data_dir: object, database_url: object) -> PatientIndex:
    from xds.mpi.index import PatientIndex

    settings = settings_from(data_dir=data_dir, database_url=database_url)
    engine = store_engine(settings)
    return PatientIndex(engine, settings)


def _demographics(person: Person) -> str:
    d = person.demographics
    name = "^".join(p for p in (d.family, d.given) if p)
    return " ".join(p for p in (name, d.birth_date, d.sex) if p)


def _by_domain(person: Person) -> dict[str, list[str]]:
    domains: dict[str, list[str]] = {}
    for pid in person.identifiers:
        domains.setdefault(pid.domain, []).append(pid.value)
    return domains


@app.command("list")
def list_patients(
    limit: Annotated[int, typer.Option(help="How many patients to list (oldest first).")] = 100,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List the MPI's patients: each person's identifiers per assigning authority."""
    index = _index(data_dir, database_url)
    persons = index.persons(limit=limit)
    for person in persons:
        typer.echo(f"{person.person_id}  {_demographics(person)}".rstrip())
        for domain, values in _by_domain(person).items():
            affinity = " (affinity domain)" if domain == index.affinity_domain else ""
            typer.echo(f"  {domain}{affinity}: {', '.join(values)}")
    if not persons:
        typer.echo("no patients", err=True)


@app.command("show")
def show(
    patient_id: Annotated[str, typer.Argument(
        metavar="ID", help="CX, e.g. '12345^^^&1.3.6.1.4.1.21367.13.20.1000&ISO'")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show one patient: identifiers per domain, demographics and the recorded history.
    A merged-away ID shows its history only; exit 1 when ID was never fed."""
    from dataclasses import fields

    from xds.mpi.model import PatientIdentifier

    cx = CX.parse(patient_id)
    if cx is None:
        typer.echo(f"error: {patient_id!r} is not a CX of the form ID^^^&OID&ISO", err=True)
        raise typer.Exit(2)
    index = _index(data_dir, database_url)
    pid = PatientIdentifier(cx.assigning_authority, cx.id)
    person, history = index.person(pid), index.history(pid)
    if person is None and not history:
        typer.echo(f"error: {patient_id} is not known", err=True)
        raise typer.Exit(1)
    typer.echo(f"patient {pid.cx}")
    if person is None:
        merged = [e for e in history if e.get("kind") == "merged"]
        into = (f" into {merged[-1].get('other_value')}^^^&{merged[-1].get('other_domain')}&ISO"
                if merged else "")
        typer.echo(f"  merged away{into}")
    else:
        typer.echo(f"person {person.person_id}")
        typer.echo("identifiers:")
        for domain, values in _by_domain(person).items():
            affinity = " (affinity domain)" if domain == index.affinity_domain else ""
            typer.echo(f"  {domain}{affinity}: {', '.join(values)}")
        typer.echo("demographics:")
        for f in fields(person.demographics):
            value = getattr(person.demographics, f.name)
            if value is not None:
                typer.echo(f"  {f.name}: {value}")
    typer.echo("history:")
    for event in history:
        other = (f" {event['other_value']}^^^&{event['other_domain']}&ISO"
                 if event.get("other_value") else "")
        detail = f" ({event['detail']})" if event.get("detail") else ""
        typer.echo(f"  {event['at']} {event['kind']}{other}{detail}")
