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
from datetime import datetime
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


_YES = frozenset({"s", "sim", "y", "yes"})
_NO = frozenset({"n", "nao", "não", "no", ""})


def confirm(question: str) -> bool:
    """Ask a yes/no question in Portuguese (``[s/N]``): s/sim or n/não, any case; Enter or
    the end of the input is no; anything else asks again, in Portuguese."""
    while True:
        try:
            answer = click.prompt(f"{question} [s/N]", default="", show_default=False)
        except click.Abort:
            click.echo()
            return False
        answer = str(answer).strip().lower()
        if answer in _YES:
            return True
        if answer in _NO:
            return False
        click.echo("Responda s (sim) ou n (não).", err=True)


_COMMAND_ARGS = "clinicflow.command_args"


class _MainGroup(click.Group):
    """The main group, keeping the command's own arguments for the group's callback (click
    empties ``ctx.args`` before calling it): a ``--data`` or ``--help`` there changes what
    ``--clinics``/``--clinic`` do."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        ctx.meta[_COMMAND_ARGS] = list(rest)
        return rest


def _command_args(ctx: click.Context) -> list[str]:
    """The arguments after the command's name, up to a ``--``."""
    args: list[str] = ctx.meta.get(_COMMAND_ARGS, [])
    return args[: args.index("--")] if "--" in args else args


@click.group(cls=_MainGroup)
@click.version_option(package_name="clinicflow")
@click.option(
    "--clinics", "clinics_file", type=click.Path(path_type=Path), default=None,
    envvar="CLINICFLOW_CLINICS",
    help="Arquivo de clínicas (várias clínicas num serviço; CLINICFLOW_CLINICS). Sem --clinic, "
    "só serve e report (todas as clínicas) e lint (o arquivo e cada catálogo) funcionam.",
)  # fmt: skip
@click.option(
    "--clinic", "clinic_id", default=None,
    help="O comando vale para esta clínica do arquivo de clínicas: o catálogo, a pasta de "
    "dados e o banco dela (ex.: clinicflow --clinic sorriso staff add Ana --role secretary).",
)  # fmt: skip
@click.option(
    "--data", "data_root", type=click.Path(path_type=Path), default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados (CLINICFLOW_DATA; padrão ./.clinicflow). Com --clinics, a raiz do "
    "serviço: a clínica ID guarda os dados em PASTA/clinics/ID.",
)  # fmt: skip
@click.pass_context
def main(
    ctx: click.Context, clinics_file: Path | None, clinic_id: str | None, data_root: Path | None
) -> None:
    """clinicflow: a recepção da clínica no WhatsApp, a partir de roteiros em YAML."""
    if data_root is not None:  # the same as CLINICFLOW_DATA, for this command only
        _set_env(ctx, {"CLINICFLOW_DATA": str(data_root)})
    if clinic_id is not None:
        if clinics_file is None:
            raise click.UsageError("--clinic precisa de --clinics ARQUIVO (ou CLINICFLOW_CLINICS)")
        _refuse_command_data(ctx, clinic_id)
        _enter_clinic(ctx, clinics_file, clinic_id, data_root or Path(".clinicflow"))
    elif clinics_file is not None:
        _every_clinic(ctx, clinics_file)


#: Commands that act on every clinic of a clinics file when no ``--clinic`` is given.
_EVERY_CLINIC = frozenset({"serve", "report", "lint"})
#: Commands whose ``--data`` is not the clinic's data (``simulate``: a scratch history).
_OWN_DATA = frozenset({"simulate"})


def _set_env(ctx: click.Context, values: dict[str, str | None]) -> None:
    """Set (a value) or unset (None) environment variables for this command only: they are
    put back as they were when the command ends."""
    import os

    before = {name: os.environ.get(name) for name in values}

    def restore() -> None:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    for name, value in values.items():
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    ctx.call_on_close(restore)


def _every_clinic(ctx: click.Context, clinics_file: Path) -> None:
    """A clinics file and no ``--clinic``: ``serve`` and ``report`` act on every clinic (they
    are given the file), ``lint`` checks the file and each catalog; any other command would act
    on the deployment's root, which holds no clinic's data, and is refused."""
    command = ctx.invoked_subcommand
    if command in _EVERY_CLINIC:
        _set_env(ctx, {"CLINICFLOW_CLINICS": str(clinics_file)})
        return
    if command is None or "--help" in _command_args(ctx):
        return
    from clinicflow.clinics import ClinicsError, load_clinics

    try:
        ids = load_clinics(clinics_file).ids
    except ClinicsError as exc:
        raise click.UsageError(str(exc)) from None
    raise click.UsageError(
        f"qual clínica? use --clinic {'|'.join(ids)} (clinicflow --clinics {clinics_file} "
        f"--clinic {ids[0]} {command} …); sem --clinic, só serve, report e lint valem para "
        "todas as clínicas"
    )


def _refuse_command_data(ctx: click.Context, clinic_id: str) -> None:
    """With ``--clinic``, a ``--data`` or a ``--database-url`` written after the command is
    refused.

    It could mean the deployment's root (what ``serve --clinics --data`` and ``report
    --clinics --data`` mean) or the clinic's own folder; either guess, when wrong, reads or
    writes another database than the clinic's (staff accounts nobody sees, a patient export
    saying "nenhum dado"). The group's ``--data`` (before the command) is unambiguous: the
    root, the clinic's data being ROOT/clinics/ID.
    """
    args = _command_args(ctx)
    # A database URL after the command would bypass the clinic's own (its schema): refused.
    if any(arg == "--database-url" or arg.startswith("--database-url=") for arg in args):
        raise click.UsageError(
            f"com --clinic, o banco é o da clínica {clinic_id} (CLINICFLOW_DATABASE_URL do "
            "serviço, no esquema da clínica): tire o --database-url do comando"
        )
    if ctx.invoked_subcommand in _OWN_DATA:
        return
    if any(arg == "--data" or arg.startswith("--data=") for arg in args):
        raise click.UsageError(
            f"com --clinic, --data vai antes do comando: clinicflow --clinics ARQUIVO --data "
            f"PASTA --clinic {clinic_id} {ctx.invoked_subcommand} … (PASTA é a raiz do serviço; "
            f"os dados da clínica ficam em PASTA/clinics/{clinic_id})"
        )


def _enter_clinic(ctx: click.Context, clinics_file: Path, clinic_id: str, root: Path) -> None:
    """Point the subcommand at one clinic of a clinics file: its catalog (the default of
    ``--catalog``), its data dir under the deployment's ``root`` and its database
    (``CLINICFLOW_DATA``, ``CLINICFLOW_DATABASE_URL`` for this command only) and its WAHA
    session (``WAHA_SESSION``, for ``serve``). ``CLINICFLOW_CLINICS`` is unset for the command:
    ``serve`` and ``report`` then act on this one clinic, not on all."""
    import os

    from clinicflow.clinics import ClinicsError, clinic_data_dir, clinic_database_url, load_clinics
    from clinicflow.database import ENV

    try:
        clinic = load_clinics(clinics_file).get(clinic_id)
    except ClinicsError as exc:
        raise click.UsageError(str(exc)) from None
    _set_env(
        ctx,
        {
            "CLINICFLOW_DATA": str(clinic_data_dir(root, clinic.id)),
            "CLINICFLOW_DATABASE_URL": clinic_database_url(os.environ.get(ENV), clinic.id),
            "CLINICFLOW_CATALOG": str(clinic.catalog),
            "WAHA_SESSION": clinic.session,
            "CLINICFLOW_CLINICS": None,
        },
    )
    ctx.default_map = _catalog_defaults(main, clinic.catalog)


def _catalog_defaults(group: click.Group, catalog: Path) -> dict[str, Any]:
    """A click ``default_map`` giving every command with a ``--catalog`` option ``catalog``."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found[name] = _catalog_defaults(command, catalog)
        elif any(p.name == "catalog" for p in command.params):
            found[name] = {"catalog": catalog}
    return found


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

    root = click.get_current_context().find_root().params
    every_clinic = root.get("clinics_file") is not None and root.get("clinic_id") is None
    if every_clinic and not paths and catalog is None:  # explicit paths are linted as given
        sys.exit(_lint_clinics(root["clinics_file"], as_json))
    targets: list[Path] = list(paths) or [catalog or bundled_catalog_path()]
    problems = lint_paths(targets)
    if as_json:
        click.echo(json.dumps([problem.as_dict() for problem in problems], ensure_ascii=False))
    else:
        _print_problems(problems)
        click.echo(summary(problems, len(expand_paths(targets))))
    sys.exit(_lint_exit(problems))


def _print_problems(problems: Any) -> None:
    for problem in problems:
        color = "red" if problem.severity == "error" else "yellow"
        click.echo(click.style(str(problem), fg=color) if sys.stdout.isatty() else problem)


def _lint_exit(problems: Any) -> int:
    """lint's exit code: 2 if a file could not be read, 1 with errors, else 0."""
    if any(problem.code == "unreadable" for problem in problems):
        return 2
    return 1 if any(problem.severity == "error" for problem in problems) else 0


def _lint_clinics(clinics_file: Path, as_json: bool) -> int:
    """``clinicflow --clinics FILE lint``: the clinics file, then every clinic's catalog, each
    labelled with its clinic's id (JSON: each problem carries ``clinic``); lint's exit code."""
    from clinicflow.clinics import ClinicsError, load_clinics
    from clinicflow.lint import lint_paths, summary
    from clinicflow.loader import expand_paths
    from clinicflow.problems import Problem

    try:
        clinics = load_clinics(clinics_file)
    except ClinicsError as exc:
        problems = list(exc.problems) or [
            Problem(str(clinics_file), 1, 1, "error", "unreadable", str(exc))
        ]
        if as_json:
            found = [{**p.as_dict(), "clinic": None} for p in problems]
            click.echo(json.dumps(found, ensure_ascii=False))
        else:
            _print_problems(problems)
            click.echo(summary(problems, 1))
        return _lint_exit(problems)
    everything: list[dict[str, Any]] = []
    codes = [0]
    for clinic in clinics.clinics:
        problems = lint_paths([clinic.catalog])
        codes.append(_lint_exit(problems))
        if as_json:
            everything.extend({**p.as_dict(), "clinic": clinic.id} for p in problems)
            continue
        click.echo(f"== {clinic.id} ({clinic.catalog}) ==")
        _print_problems(problems)
        click.echo(summary(problems, len(expand_paths([clinic.catalog]))))
    if as_json:
        click.echo(json.dumps(everything, ensure_ascii=False))
    else:
        click.echo(f"{clinics_file}: {len(clinics.clinics)} clínica(s) conferida(s)")
    return max(codes)


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
@click.option(
    "--overlay", is_flag=True, help="Anota quantas conversas passaram em cada seta e onde pararam."
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados para o --overlay. Padrão: ./.clinicflow",
)
@clean_errors
def graph(script_id: str, catalog: Path | None, fmt: str, overlay: bool, data: Path | None) -> None:
    """Desenha o diagrama de estados do roteiro SCRIPT_ID (Mermaid, que o GitHub mostra)."""
    from clinicflow.diagram import dot, mermaid
    from clinicflow.loader import load_catalog

    loaded = load_catalog(catalog)
    script = loaded.script(script_id)
    if script is None:
        known = ", ".join(sorted(s.id for s in loaded.scripts))
        raise click.BadParameter(f"não há roteiro '{script_id}'; existem: {known}")
    counts, stops = _overlay(script_id, data) if overlay else ({}, {})
    click.echo((mermaid if fmt == "mermaid" else dot)(script, counts, stops), nl=False)


# -- the engine's commands ----------------------------------------------------------------

_DATA = click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CLINICFLOW_DATA",
    help="Pasta de dados (histórico SQLite e índice). Padrão: ./.clinicflow",
)
_DATABASE_URL = click.option(
    "--database-url",
    default=None,
    help="postgresql://… guarda todas as tabelas no PostgreSQL (CLINICFLOW_DATABASE_URL; "
    "padrão: SQLite na pasta de dados).",
)
_LLM = click.option(
    "--llm",
    type=click.Choice(["gemini", "none"]),
    default=None,
    help="Usar o Gemini para entender o que as regras locais não entendem "
    "(padrão: gemini quando há GEMINI_API_KEY ou GOOGLE_API_KEY).",
)


def _make_llm(choice: str | None, *, quiet: bool = False) -> Any:
    """The LLM the user asked for (or the environment offers), with one clear line if none."""
    from clinicflow.llm import LLMConfig, llm_from_config

    config = LLMConfig.from_env()
    if choice == "none":
        return None
    llm = llm_from_config(config)
    if llm is None and not quiet:
        click.echo(
            "Sem chave do Gemini (GEMINI_API_KEY): entendimento apenas local, offline.", err=True
        )
    return llm


@main.command()
@_CATALOG
@_DATA
@_LLM
@click.option("--script", "script_id", default=None, help="Começa direto neste roteiro.")
@click.option("--chat-id", default="terminal@c.us", show_default=True, help="Id da conversa.")
@click.option("--debug", is_flag=True, help="Mostra intenção, fonte, confiança e estado.")
@click.option(
    "--new", "new", is_flag=True, help="Começa uma conversa nova em vez de retomar a anterior."
)
@clean_errors
def chat(
    catalog: Path | None,
    data: Path | None,
    llm: str | None,
    script_id: str | None,
    chat_id: str,
    debug: bool,
    new: bool,
) -> None:
    """Converse com o assistente no terminal, offline.

    Retoma a conversa anterior deste terminal (e avisa); /novo ou --new começa outra.
    /devolver devolve a conversa ao bot depois de passar para a secretária; /sair encerra.
    """
    from rich.console import Console

    from clinicflow.engine import Engine

    console = Console()
    engine = Engine.from_catalog(
        catalog, data_dir=data or Path(".clinicflow"), llm=_make_llm(llm), progress=True
    )
    clinic = engine.catalog.clinic.name
    console.print(f"[bold]{clinic}[/] — assistente virtual. Digite /sair para encerrar.")
    if new:
        engine.restart(chat_id)
    else:
        _say_resumed(console, engine, chat_id)
    if script_id:
        if engine.catalog.script(script_id) is None:
            raise click.BadParameter(f"não há roteiro '{script_id}'")
        _print_turn(console, engine.start(chat_id, script_id), debug)
    while True:
        try:
            text = console.input("[bold cyan]você> [/]")
        except (EOFError, KeyboardInterrupt):
            break
        if not text.strip():
            continue  # an empty Enter is not a message
        if text.strip() in ("/sair", "/exit", "/quit"):
            break
        if text.strip() == "/devolver":
            _print_turn(console, engine.hand_back(chat_id), debug)
            continue
        if text.strip() == "/novo":
            engine.restart(chat_id)
            console.print("[dim](conversa nova: a anterior foi encerrada)[/]")
            continue
        _print_turn(console, engine.handle(chat_id, text), debug)
    engine.close_resources()


def _say_resumed(console: Any, engine: Any, chat_id: str) -> None:
    """Tell the user this terminal continues an earlier conversation, and how not to."""
    conv = engine.conversation(chat_id)
    if conv is None or conv.status in ("", "closed"):
        return
    where = {
        "waiting_human": "aguardando a secretária (/devolver devolve ao bot)",
        "human": "com a secretária (/devolver devolve ao bot)",
    }.get(conv.status, f"em {conv.script_id or 'escolha do assunto'}")
    console.print(
        f"[yellow]Retomando a conversa anterior deste terminal ({conv.turns} mensagens, "
        f"{where}). Para começar outra: /novo (ou clinicflow chat --new).[/]"
    )


def _print_turn(console: Any, result: Any, debug: bool) -> None:
    from rich.markup import escape

    for reply in result.replies:
        console.print(f"[green]bot>[/] {escape(reply)}")
    if not result.replies and result.status in ("waiting_human", "human"):
        console.print("[dim](aguardando a secretária — o bot não responde; /devolver)[/]")
    if debug:
        console.print(
            f"[dim]intent={result.intent} source={result.source} "
            f"confidence={result.confidence:.2f} script={result.script_id} "
            f"state={result.state} status={result.status} lead={result.lead_status} "
            f"{result.ms:.1f} ms[/]"
        )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_CATALOG
@_LLM
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Guardar o histórico nesta pasta (padrão: uma pasta temporária).",
)
@click.option("--json", "as_json", is_flag=True, help="Um registro JSON por turno.")
@click.option("--coverage", is_flag=True, help="Estados e transições exercitados por roteiro.")
@click.option("--stats", is_flag=True, help="Chamadas ao LLM e tokens por turno.")
@clean_errors
def simulate(
    paths: tuple[Path, ...],
    catalog: Path | None,
    llm: str | None,
    data: Path | None,
    as_json: bool,
    coverage: bool,
    stats: bool,
) -> None:
    """Roda conversas de teste em YAML, de forma determinística e offline.

    Sai com 0 se todas passam, 1 se alguma falha, 2 se um arquivo de teste é inválido.
    """
    import tempfile

    from clinicflow import simulate as sim
    from clinicflow.clock import ManualClock
    from clinicflow.engine import Engine

    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    conversations = [conv for file in files for conv in sim.load_file(file)]
    clock = ManualClock()
    with tempfile.TemporaryDirectory(prefix="clinicflow-sim-") as tmp:
        engine = Engine.from_catalog(
            catalog, data_dir=data or Path(tmp), llm=_make_llm(llm, quiet=True), clock=clock
        )
        try:
            records = sim.run(engine, clock, conversations)
            report = sim.coverage(engine, records) if coverage else None
            calls = engine.store.query(
                "SELECT COUNT(*) AS calls, COALESCE(SUM(tokens_in), 0) AS tokens_in, "
                "COALESCE(SUM(tokens_out), 0) AS tokens_out FROM understanding "
                "WHERE model IS NOT NULL"
            )[0]
        finally:
            engine.close_resources()
    failed = [r for r in records if r.failures]
    user_turns = [r for r in records if r.kind == "user"]
    if as_json:
        for record in records:
            click.echo(json.dumps(record.as_dict(), ensure_ascii=False))
    else:
        for record in failed:
            click.echo(f"FALHOU {record.file}:{record.line} ({record.conversation})")
            click.echo(f"  paciente: {record.user!r}")
            for failure in record.failures:
                click.echo(f"  - {failure}")
        checked = sum(1 for r in records if r.failures is not None)
        click.echo(
            f"{len(conversations)} conversas, {len(records)} turnos, "
            f"{len(failed)} falharam de {checked}."
        )
    if stats or as_json:
        per_turn = calls["calls"] / len(user_turns) if user_turns else 0.0
        line = {
            "stats": True,
            "user_turns": len(user_turns),
            "llm_calls": calls["calls"],
            "llm_calls_per_turn": round(per_turn, 3),
            "tokens_in": calls["tokens_in"],
            "tokens_out": calls["tokens_out"],
        }
        click.echo(json.dumps(line) if as_json else _stats_line(line))
    if report is not None:
        for script_id, figures in report.items():
            click.echo(
                f"{script_id}: estados {figures['states_covered']}/{figures['states']}, "
                f"transições {figures['transitions_covered']}/{figures['transitions']}"
                + (
                    f" — faltam: {', '.join(figures['states_missed'])}"
                    if figures["states_missed"]
                    else ""
                )
            )
    sys.exit(1 if failed else 0)


def _stats_line(line: dict[str, Any]) -> str:
    return (
        f"LLM: {line['llm_calls']} chamadas em {line['user_turns']} turnos "
        f"({line['llm_calls_per_turn']} por turno), tokens {line['tokens_in']} in / "
        f"{line['tokens_out']} out"
    )


@main.command()
@click.argument("texts", nargs=-1)
@_CATALOG
@_DATA
@clean_errors
def classify(texts: tuple[str, ...], catalog: Path | None, data: Path | None) -> None:
    """Classifica mensagens: um JSON por linha com text, intent, confidence e source.

    Use "-" para ler uma mensagem por linha da entrada padrão.
    """
    from clinicflow.engine import Engine
    from clinicflow.text import encodable

    if not texts:
        raise click.UsageError(
            'diga o texto a classificar (entre aspas), ou "-" para ler da entrada padrão'
        )
    lines: list[str] = []
    for text in texts:
        lines.extend(sys.stdin.read().splitlines() if text == "-" else [text])
    engine = Engine.from_catalog(catalog, data_dir=data or Path(".clinicflow"))
    try:
        for text in map(encodable, lines):
            u = engine.classify(text)
            record = {
                "text": text,
                "intent": u.intent or "out_of_scope",
                "confidence": round(u.confidence, 3),
                "source": u.source,
            }
            if u.urgent:
                record["red_flags"] = list(u.red_flags)
                record["category"] = u.safety.category
                record["sure"] = u.safety.sure
            click.echo(json.dumps(record, ensure_ascii=False))
    finally:
        engine.close_resources()


def _serve_epilog() -> str:
    from clinicflow.runner.config import ENV_VARS

    lines = "\n".join(f"  {name:<28} {text}" for name, text in ENV_VARS.items())
    return f"\b\nVariáveis de ambiente (ou as mesmas chaves num arquivo --config):\n{lines}"


@main.command(epilog=_serve_epilog())
@click.option("--host", default=None, help="Endereço (CLINICFLOW_HOST; padrão 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Porta (CLINICFLOW_PORT; padrão 8080).")
@_CATALOG
@_DATA
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None,
    help="Arquivo TOML ou YAML com as configurações (CLINICFLOW_CONFIG).",
)  # fmt: skip
@click.option(
    "--insecure", is_flag=True, default=None,
    help="Aceita webhooks sem assinatura (sem WAHA_HMAC_KEY) num endereço que não é o local "
    "(CLINICFLOW_INSECURE=1). Sem isso, o serviço se recusa a iniciar.",
)  # fmt: skip
@_DATABASE_URL
@click.option(
    "--clinics", type=click.Path(path_type=Path), default=None,
    help="Arquivo de clínicas (CLINICFLOW_CLINICS): várias clínicas num serviço, cada uma com "
    "a sua sessão do WAHA, o seu catálogo e os seus dados, em /c/<id>/.",
)  # fmt: skip
@clean_errors
def serve(
    host: str | None,
    port: int | None,
    catalog: Path | None,
    data: Path | None,
    config_file: Path | None,
    insecure: bool | None,
    database_url: str | None,
    clinics: Path | None,
) -> None:
    """Atende o WhatsApp via WAHA: webhooks, respostas, API da equipe (docs/runner.md)."""
    from dataclasses import replace

    from clinicflow.runner.app import run
    from clinicflow.runner.config import RunnerConfig

    config = RunnerConfig.from_env(config_file=config_file)
    overrides: dict[str, Any] = {"host": host, "port": port, "catalog": catalog, "data_dir": data,
                                 "insecure": insecure or None,
                                 "database_url": database_url, "clinics": clinics}  # fmt: skip
    run(replace(config, **{k: v for k, v in overrides.items() if v is not None}))


# -- reports ------------------------------------------------------------------------------


def _open_history(data: Path | None) -> Any:
    """The history of a data dir, or a clean error when there is none."""
    from clinicflow.database import resolve
    from clinicflow.errors import StorageError
    from clinicflow.storage import Store

    folder = data or Path(".clinicflow")
    target = resolve(folder)
    if not target.is_postgres and not target.sqlite_path.exists():
        raise StorageError(f"não há histórico em {folder} (use --data)")
    return Store(folder)


def _overlay(
    script_id: str, data: Path | None
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    from clinicflow.metrics import transition_counts

    store = _open_history(data)
    try:
        return transition_counts(store, script_id)
    finally:
        store.close()


@main.command()
@_CATALOG
@_DATA
@click.option("--since", default=None, help="Início do período (AAAA-MM-DD, dia da clínica).")
@click.option("--until", default=None, help="Fim do período, incluído (AAAA-MM-DD).")
@click.option("--script", "script_id", default=None, help="Só conversas deste roteiro.")
@click.option("--campaign", default=None, help="Só conversas desta origem (id ou organic).")
@click.option("--json", "as_json", is_flag=True, help="Imprime o relatório como JSON.")
@click.option(
    "--clinics", "clinics_file", type=click.Path(path_type=Path), default=None,
    envvar="CLINICFLOW_CLINICS",
    help="Arquivo de clínicas (várias clínicas num serviço): sem --clinic, um relatório de "
    "cada clínica, lado a lado.",
)  # fmt: skip
@click.option("--clinic", "clinic_id", default=None, help="Só esta clínica (id em --clinics).")
@clean_errors
def report(
    catalog: Path | None,
    data: Path | None,
    since: str | None,
    until: str | None,
    script_id: str | None,
    campaign: str | None,
    as_json: bool,
    clinics_file: Path | None,
    clinic_id: str | None,
) -> None:
    """Relatório do período: funil, abandono, secretária, tempos de resposta e campanhas."""
    from clinicflow.loader import load_catalog

    if clinic_id is not None and clinics_file is None:
        raise click.UsageError("--clinic precisa de --clinics ARQUIVO (ou CLINICFLOW_CLINICS)")
    if clinics_file is None:
        loaded = load_catalog(catalog)
        figures = _report_of(loaded, _open_history(data), since, until, script_id, campaign)
        if as_json:
            click.echo(json.dumps(figures.as_dict(), ensure_ascii=False, indent=2))
            return
        from clinicflow.report_tables import print_report

        print_report(figures, {s.id: s.title for s in loaded.scripts})
        return
    _clinics_report(clinics_file, clinic_id, data, since, until, script_id, campaign, as_json)


def _report_of(
    loaded: Any,
    store: Any,
    since: str | None,
    until: str | None,
    script_id: str | None,
    campaign: str | None,
) -> Any:
    """One history's report over the period (the days read in its clinic's time zone); the
    store is closed."""
    from clinicflow.metrics import parse_day
    from clinicflow.metrics import report as build_report

    tz = loaded.clinic.hours.timezone
    try:
        try:
            start = parse_day(since, tz) if since else None
            end = parse_day(until, tz, end=True) if until else None
        except ValueError as exc:
            raise click.BadParameter(f"data inválida: {exc}") from exc
        return build_report(
            store, since=start, until=end, script=script_id, campaign=campaign, catalog=loaded
        )
    finally:
        store.close()


def _clinics_report(
    clinics_file: Path,
    clinic_id: str | None,
    data: Path | None,
    since: str | None,
    until: str | None,
    script_id: str | None,
    campaign: str | None,
    as_json: bool,
) -> None:
    """``report --clinics``: one clinic's report (``--clinic``), or each clinic's in turn, each
    from its own catalog and its own history (:mod:`clinicflow.clinics`)."""
    import os

    from clinicflow.clinics import clinic_data_dir, clinic_database_url, load_clinics
    from clinicflow.database import ENV
    from clinicflow.errors import ClinicflowError
    from clinicflow.loader import load_catalog
    from clinicflow.storage import Store

    clinics = load_clinics(clinics_file)
    chosen = [clinics.get(clinic_id)] if clinic_id is not None else list(clinics.clinics)
    folder = data or Path(".clinicflow")
    reports: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for clinic in chosen:
        try:  # one clinic's broken catalog or history does not hide the others' reports
            loaded = load_catalog(clinic.catalog)
            store = Store(clinic_data_dir(folder, clinic.id),
                          clinic_database_url(os.environ.get(ENV), clinic.id))  # fmt: skip
            figures = _report_of(loaded, store, since, until, script_id, campaign)
        except ClinicflowError as exc:
            if clinic_id is not None:
                raise
            failed[clinic.id] = str(exc)
            continue
        reports[clinic.id] = (loaded, figures)
    if as_json:
        body = {cid: figures.as_dict() for cid, (_, figures) in reports.items()}
        body.update({cid: {"error": error} for cid, error in failed.items()})
        click.echo(json.dumps(body if clinic_id is None else body[clinic_id], ensure_ascii=False,
                              indent=2))  # fmt: skip
    else:
        from clinicflow.report_tables import print_report

        for cid, (loaded, figures) in reports.items():
            click.echo(f"\n== {loaded.clinic.name} ({cid}) ==")
            print_report(figures, {s.id: s.title for s in loaded.scripts})
    for cid, error in failed.items():
        click.echo(f"erro: sem relatório da clínica {cid}: {error}", err=True)
    if failed:
        raise SystemExit(1)


class _Moment(click.ParamType):
    """An ISO moment: a date alone, a date and time, with or without an offset (``Z``,
    ``-03:00``); a space may stand for the ``T``."""

    name = "momento"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"'{value}' não é um momento; escreva por exemplo 2026-12-25, 2026-12-25T12:00 "
                "ou 2026-12-25T12:00-03:00",
                param,
                ctx,
            )


@main.command()
@_CATALOG
@click.option(
    "--at",
    "at",
    type=_Moment(),
    default=None,
    help="Em vez de agora, este momento (ex.: 2026-12-25, 2026-12-25T12:00, "
    "2026-12-25T12:00-03:00); sem fuso, é o da clínica; só a data: 0h desse dia.",
)
@clean_errors
def hours(catalog: Path | None, at: datetime | None) -> None:
    """Diz se a clínica está aberta agora (ou no momento de --at) e quando é a próxima
    abertura."""
    from zoneinfo import ZoneInfo

    from clinicflow.hours import BusinessHours, status_line
    from clinicflow.loader import load_catalog

    clinic = load_catalog(catalog).clinic
    zone = ZoneInfo(clinic.hours.timezone)
    when = None
    if at is not None:
        when = at.astimezone(zone) if at.tzinfo is not None else at.replace(tzinfo=zone)
    click.echo(status_line(BusinessHours(clinic.hours), when, asked=when is not None))


def _register() -> None:
    # Kept in their own modules (cli_data, cli_waha, cli_staff, cli_db); they import
    # clean_errors from here.
    from clinicflow.cli_data import COMMANDS as DATA_COMMANDS
    from clinicflow.cli_db import COMMANDS as DB_COMMANDS
    from clinicflow.cli_staff import COMMANDS as STAFF_COMMANDS
    from clinicflow.cli_waha import COMMANDS as WAHA_COMMANDS

    for command in (*DATA_COMMANDS, *WAHA_COMMANDS, *STAFF_COMMANDS, *DB_COMMANDS):
        main.add_command(command)


_register()
