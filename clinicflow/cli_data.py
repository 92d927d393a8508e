"""The data commands of the ``clinicflow`` CLI: backups, retention, a patient's data (LGPD).

Thin commands over :mod:`clinicflow.backup` and :mod:`clinicflow.privacy`; registered on the
main group by :mod:`clinicflow.cli`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from clinicflow.cli import clean_errors, confirm

_DATA = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados. Padrão: ./.clinicflow",
)


def _now() -> datetime:
    from clinicflow.clock import SystemClock

    return SystemClock().now()


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@_DATA
@clean_errors
def backup(dest: Path, data: Path | None) -> None:
    """Copia o banco de dados para DEST (uma pasta nova ou vazia), mesmo com o serve rodando.

    A cópia é consistente (API de backup do SQLite) e vem com um manifest.json (data,
    versão, tabelas e contagem de linhas). O índice de exemplos é refeito no primeiro start.
    """
    from clinicflow.backup import backup as make_backup

    now = _now()
    manifest = make_backup(data or Path(".clinicflow"), dest, now=now)
    rows = sum(manifest.tables.values())
    click.echo(f"Cópia em {dest}: {len(manifest.tables)} tabelas, {rows} linhas, "
               f"{manifest.bytes} bytes (sha256 {manifest.sha256[:12]}…).")  # fmt: skip


@click.command()
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
@_DATA
@click.option("--force", is_flag=True, help="Substitui um banco que já existe na pasta de dados.")
@clean_errors
def restore(src: Path, data: Path | None, force: bool) -> None:
    """Restaura uma cópia feita com `clinicflow backup` na pasta de dados.

    Recusa se o clinicflow serve estiver usando a pasta, e (sem --force) se ela não estiver
    vazia.
    """
    from clinicflow.backup import restore as do_restore

    target = data or Path(".clinicflow")
    manifest = do_restore(src, target, force=force)
    click.echo(f"Restaurado em {target} (cópia de {manifest.created_at}).")


@click.command()
@_DATA
@click.option("--catalog", type=click.Path(path_type=Path), default=None, help="Pasta do catálogo.")
@click.option(
    "--days", type=click.IntRange(min=1), default=None,
    help="Prazo em dias (padrão: privacy.retention_days do clinic.yaml).",
)  # fmt: skip
@clean_errors
def retention(data: Path | None, catalog: Path | None, days: int | None) -> None:
    """Apaga o texto das mensagens mais antigas que o prazo de guarda (LGPD).

    As conversas continuam contando nos relatórios; só o texto vira "[removido]". O serve
    faz isso sozinho uma vez por dia.
    """
    from clinicflow.loader import load_catalog
    from clinicflow.privacy import redact_expired

    if days is None:
        privacy = load_catalog(catalog).clinic.privacy
        days = privacy.retention_days if privacy is not None else None
    if days is None:
        raise click.UsageError("sem prazo: use --days ou privacy.retention_days no clinic.yaml")
    now = _now()
    count = redact_expired(data or Path(".clinicflow"), days, now=now)
    click.echo(f"{count} textos com mais de {days} dias foram apagados.")


@click.group()
def patient() -> None:
    """Os dados de uma paciente (LGPD): exportar ou apagar tudo o que está guardado."""


@patient.command("export")
@click.argument("phone")
@_DATA
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), default=None,
    help="Grava o JSON neste arquivo (padrão: imprime).",
)  # fmt: skip
@clean_errors
def export_command(phone: str, data: Path | None, output: Path | None) -> None:
    """Tudo o que está guardado sobre a paciente do número PHONE, em JSON.

    O número pode vir em qualquer forma: +55 (11) 98765-4321, 11987654321 ou o id do chat.
    """
    from clinicflow.privacy import export_patient

    now = _now()
    found = export_patient(data or Path(".clinicflow"), phone, now=now)
    text = json.dumps(found, ensure_ascii=False, indent=2, default=str)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", "utf-8")
    click.echo(f"{sum(len(rows) for rows in found['tables'].values())} registros em {output}.")


@patient.command("erase")
@click.argument("phone")
@_DATA
@click.option("--yes", is_flag=True, help="Não pergunta antes de apagar.")
@clean_errors
def erase_command(phone: str, data: Path | None, yes: bool) -> None:
    """Apaga tudo o que está guardado sobre a paciente do número PHONE.

    Histórico, eventos, encaminhamentos, lead, estado da conversa, lembretes agendados, fila
    de envio e de entrada. Fica só uma contagem anônima (tabela erasures).
    """
    from clinicflow.privacy import erase_patient

    folder = data or Path(".clinicflow")
    now = _now()
    if not yes:
        plan = erase_patient(folder, phone, now=now, dry_run=True)
        click.echo(f"Conversas: {', '.join(plan.chat_ids)}")
        for table, count in sorted(plan.deleted.items()):
            click.echo(f"  {table}: {count} registros a apagar")
        for table, count in sorted(plan.scrubbed.items()):
            click.echo(f"  {table}: {count} registros de outras conversas a limpar")
        if not confirm("Apagar definitivamente?"):
            click.echo("Nada foi apagado.")
            raise SystemExit(1)
    done = erase_patient(folder, phone, now=now)
    click.echo(
        f"Apagados {sum(done.deleted.values())} registros "
        f"({', '.join(f'{t}: {n}' for t, n in sorted(done.deleted.items()))})."
    )
    if done.kept_binary:
        click.echo(
            "Atenção: o estado interno de outras conversas cita este número "
            f"({', '.join(sorted(done.kept_binary))}); ele some quando elas avançarem.",
            err=True,
        )


COMMANDS = (backup, restore, retention, patient)
