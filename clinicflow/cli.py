"""The ``clinicflow`` command line: thin commands over the library.

Each command parses its arguments, calls one library function and prints the result. Heavy
modules (the engine, LanceDB, LangGraph, Gemini) are imported inside the commands that need
them, so ``clinicflow lint`` starts fast and imports none of them.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from clinicflow.errors import ClinicflowError

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(command: F) -> F:
    """Turn library errors into a clean message and the error's exit code (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClinicflowError as exc:
            click.echo(f"Erro: {exc}", err=True)
            sys.exit(exc.exit_code)

    return cast(F, wrapper)


@click.group()
@click.version_option(package_name="clinicflow")
def main() -> None:
    """clinicflow: a recepção da clínica no WhatsApp, a partir de roteiros em YAML."""


_CATALOG = click.option(
    "--catalog",
    type=click.Path(path_type=Path),
    default=None,
    help="Pasta do catálogo (padrão: o catálogo que vem com o pacote).",
)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_CATALOG
@click.option("--json", "as_json", is_flag=True, help="Imprime os problemas como JSON.")
@clean_errors
def lint(paths: tuple[Path, ...], catalog: Path | None, as_json: bool) -> None:
    """Confere os roteiros e o clinic.yaml e aponta ARQUIVO:LINHA:COLUNA de cada problema.

    Sai com 0 sem erros (avisos são permitidos), 1 com erros, 2 se um arquivo não pôde ser lido.
    """
    from clinicflow.lint import lint_paths, summary
    from clinicflow.loader import bundled_catalog_path, expand_paths

    targets: list[Path] = list(paths) or [catalog or bundled_catalog_path()]
    problems = lint_paths(targets)
    if as_json:
        click.echo(json.dumps([problem.as_dict() for problem in problems], ensure_ascii=False))
    else:
        for problem in problems:
            color = "red" if problem.severity == "error" else "yellow"
            click.echo(click.style(str(problem), fg=color) if sys.stdout.isatty() else problem)
        click.echo(summary(problems, len(expand_paths(targets))))
    if any(problem.code == "unreadable" for problem in problems):
        sys.exit(2)
    sys.exit(1 if any(problem.severity == "error" for problem in problems) else 0)


@main.command()
@click.argument("script_id")
@_CATALOG
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Formato do diagrama.",
)
@clean_errors
def graph(script_id: str, catalog: Path | None, fmt: str) -> None:
    """Desenha o diagrama de estados do roteiro SCRIPT_ID (Mermaid, que o GitHub mostra)."""
    from clinicflow.diagram import dot, mermaid
    from clinicflow.loader import load_catalog

    loaded = load_catalog(catalog)
    script = loaded.script(script_id)
    if script is None:
        known = ", ".join(sorted(s.id for s in loaded.scripts))
        raise click.BadParameter(f"não há roteiro '{script_id}'; existem: {known}")
    click.echo((mermaid if fmt == "mermaid" else dot)(script), nl=False)
