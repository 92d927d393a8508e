"""``clinicflow staff``: the people who log in to the inbox (accounts, passwords, tokens).

Thin commands over :class:`clinicflow.staff.accounts.Accounts`; registered on the main group
by :mod:`clinicflow.cli`. They write the data directory's database, the one the runner reads
(:func:`clinicflow.database.resolve`: ``CLINICFLOW_DATABASE_URL`` when set, else the data
directory's ``clinicflow.db``), migrated as the runner would (the runner may be serving:
SQLite's WAL lets both write).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clinicflow.cli import clean_errors

if TYPE_CHECKING:
    from clinicflow.staff.accounts import Accounts

_DATA = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados. Padrão: ./.clinicflow",
)
_PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Lê a senha da primeira linha da entrada padrão (para scripts), em vez de perguntar.",
)


@contextmanager
def _accounts(data: Path | None) -> Iterator[Accounts]:
    from clinicflow.staff.accounts import Accounts
    from clinicflow.storage import Store

    # Store resolves the data dir's database (PostgreSQL too) and brings it to this version's
    # schema; Accounts creates its own tables there, as the runner's workspace does.
    store = Store(data or Path(".clinicflow"))
    try:
        yield Accounts(store.conn)
    finally:
        store.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Senha", hide_input=True, confirmation_prompt="Repita a senha"))


def _phone(text: str | None, catalog: Path | None) -> str | None:
    if not text:
        return None
    from clinicflow.loader import load_catalog
    from clinicflow.phones import parse_phone
    from clinicflow.staff.accounts import AccountError

    phone = parse_phone(text, load_catalog(catalog).clinic.country)
    if phone is None:
        raise AccountError(f"'{text}' não é um telefone válido (escreva com DDD)")
    return phone


@click.group()
def staff() -> None:
    """Contas da equipe para a caixa de entrada (/inbox): criar, listar, desativar, senha."""


@staff.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["secretary", "admin"]), required=True,
              help="secretary: as conversas dela e a fila; admin: tudo.")  # fmt: skip
@click.option("--phone", default=None, help="WhatsApp dela: recebe os avisos e os comandos #.")
@_PASSWORD_STDIN
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="Catálogo (o país da clínica, para ler o telefone).")  # fmt: skip
@_DATA
@clean_errors
def add(name: str, role: str, phone: str | None, password_stdin: bool, catalog: Path | None,
        data: Path | None) -> None:  # fmt: skip
    """Cria a conta NAME (o nome que ela digita para entrar)."""
    number = _phone(phone, catalog)
    password = _password(password_stdin)
    with _accounts(data) as accounts:
        account = accounts.add(name, role, password, number)
    click.echo(f"Conta criada: {account.name} ({account.role})"
               + (f", WhatsApp {account.phone}" if account.phone else "") + ".")  # fmt: skip


@staff.command("list")
@_DATA
@clean_errors
def list_(data: Path | None) -> None:
    """Lista as contas: nome, função, telefone, ativa, disponível, tokens."""
    with _accounts(data) as accounts:
        people = accounts.all()
        if not people:
            click.echo("Nenhuma conta. Crie com: clinicflow staff add NOME --role secretary")
            return
        for a in people:
            tokens = accounts.live_tokens(a.id)
            click.echo(
                f"{a.name}\t{a.role}\t{a.phone or '-'}\t"
                f"{'ativa' if a.active else 'desativada'}\t"
                f"{'disponível' if a.available else 'indisponível'}\t{tokens} token(s)"
            )


@staff.command("disable")
@click.argument("name")
@_DATA
@clean_errors
def disable(name: str, data: Path | None) -> None:
    """Desativa a conta: sai de todas as sessões, tokens recusados, sem novas conversas."""
    with _accounts(data) as accounts:
        accounts.set_active(name, False)
    click.echo(f"Conta {name} desativada.")


@staff.command("enable")
@click.argument("name")
@_DATA
@clean_errors
def enable(name: str, data: Path | None) -> None:
    """Reativa uma conta desativada."""
    with _accounts(data) as accounts:
        accounts.set_active(name, True)
    click.echo(f"Conta {name} reativada.")


@staff.command("reset")
@click.argument("name")
@_PASSWORD_STDIN
@_DATA
@clean_errors
def reset(name: str, password_stdin: bool, data: Path | None) -> None:
    """Troca a senha de NAME; as sessões abertas dela terminam."""
    password = _password(password_stdin)
    with _accounts(data) as accounts:
        accounts.reset_password(name, password)
    click.echo(f"Senha de {name} trocada; as sessões abertas foram encerradas.")


@staff.command("token")
@click.argument("name")
@click.option("--label", default="", help="Para que serve (ex.: n8n).")
@click.option("--revoke", is_flag=True, help="Revoga todos os tokens de NAME em vez de criar.")
@_DATA
@clean_errors
def token(name: str, label: str, revoke: bool, data: Path | None) -> None:
    """Cria um token pessoal da API para integrações (mostrado uma vez só), ou revoga."""
    with _accounts(data) as accounts:
        if revoke:
            count = accounts.revoke_tokens(name)
            click.echo(f"{count} token(s) de {name} revogado(s).")
            return
        value = accounts.issue_token(name, label)
    click.echo(value)
    click.echo("Guarde agora: ele não será mostrado de novo. Envie como "
               "'Authorization: Bearer <token>', nunca na URL.", err=True)  # fmt: skip


COMMANDS = (staff,)

__all__ = ["COMMANDS"]
