"""``clinicflow db``: the clinic's database (schema versions, moving to PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import click

from clinicflow.cli import clean_errors

__all__ = ["COMMANDS"]

_DATA = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados (padrão: ./.clinicflow).",
)


@click.group()
def db() -> None:
    """O banco da clínica: versões do esquema e cópia para o PostgreSQL (docs/postgresql.md)."""


@db.command()
@_DATA
@click.option(
    "--database-url", default=None, envvar="CLINICFLOW_DATABASE_URL",
    help="postgresql://… (padrão: o SQLite da pasta de dados).",
)  # fmt: skip
@clean_errors
def migrate(data: Path | None, database_url: str | None) -> None:
    """Leva o banco à versão de esquema deste clinicflow (o serviço também faz isso ao iniciar)."""
    from clinicflow import database
    from clinicflow.schema import SCHEMA_VERSION
    from clinicflow.storage import Store

    folder = data or Path(".clinicflow")
    target = database.resolve(folder, database_url)
    found = 0
    if target.is_postgres or target.sqlite_path.exists():
        conn = database.connect(target)
        try:
            found = database.user_version(conn)
        finally:
            conn.close()
    Store(folder, target.url).close()
    if found == SCHEMA_VERSION:
        click.echo(f"{target.redacted}: esquema já na versão {SCHEMA_VERSION}")
    else:
        click.echo(f"{target.redacted}: esquema {found} → {SCHEMA_VERSION}")


@db.command()
@_DATA
@click.option("--from", "source", required=True, help="sqlite:///… ou postgresql://… (origem).")
@click.option("--to", "target", required=True, help="postgresql://… ou sqlite:///… (destino).")
@clean_errors
def copy(data: Path | None, source: str, target: str) -> None:
    """Copia todas as tabelas de um banco para outro (pode repetir: nada é duplicado)."""
    from clinicflow.database import resolve
    from clinicflow.dbcopy import copy_database

    folder = data or Path(".clinicflow")
    src, dst = resolve(folder, source), resolve(folder, target)
    report = copy_database(src, dst, folder)
    width = max(len(r.table) for r in report)
    click.echo(f"{src.redacted} → {dst.redacted}")
    for row in report:
        note = f"  ({row.note})" if row.note else ""
        click.echo(
            f"  {row.table:<{width}}  {row.source_rows:>7} na origem  {row.added:>7} copiadas{note}"
        )
    total = sum(r.added for r in report)
    click.echo(f"{total} linhas copiadas")
    conflicts = sum(r.conflicts for r in report)
    if conflicts:
        click.echo(
            f"erro: {conflicts} linhas não copiadas porque o destino já usa os mesmos ids para "
            "outras linhas (os dois bancos receberam conversas depois de uma cópia anterior); "
            "nada foi misturado: escolha um dos bancos e copie de novo para um destino vazio",
            err=True,
        )
        raise SystemExit(1)


COMMANDS = [db]
