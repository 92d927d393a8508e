"""Several clinics in one deployment: the ``clinics`` file and where each clinic keeps its data.

A clinic group or an agency runs one ``serve`` for several clinics (or several WhatsApp
numbers). A YAML file names them; each maps its WAHA session to its own catalog folder, and
the catalog carries everything else that is the clinic's own (``clinic.yaml``: name, staff,
hours, campaigns, privacy; the scripts)::

    clinics:
      florescer:                        # the clinic's id: URLs, reports, the database
        session: default                # its WAHA session (one number)
        catalog: catalogs/florescer     # relative to this file
      sorriso:
        session: sorriso
        catalog: catalogs/sorriso
        waha_url: http://waha-2:3000    # optional: another WAHA server (default WAHA_URL)
        waha_api_key_env: WAHA2_KEY     # optional: the name of the variable holding its key

Where a clinic's data lives (:func:`clinic_data_dir`, :func:`clinic_database_url`): SQLite, a
data directory of its own (``<data>/clinics/<id>/``); PostgreSQL, a schema of its own
(``clinic_<id>``) in the one database. Each clinic is a namespace rather than a ``clinic``
column on every row because a patient who writes to two clinics of a group has the same chat
id at both: a column would have to enter every key (conversations, checkpoints, inbox, leads,
jobs, locks) and every query, and one query that forgot it would show one clinic's patients to
another's staff. In a namespace that cannot happen, and backups, patient export/erase and
retention keep working per clinic unchanged. Reports across clinics put the namespaces side by
side (``clinicflow report --clinics FILE``).

Errors: :class:`ClinicsError`, with every problem of the file as ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from clinicflow.errors import ScriptError
from clinicflow.model import Pos
from clinicflow.problems import Problem
from clinicflow.yamlsrc import Reader, YMap, YNode, YScalar, parse

__all__ = [
    "Clinic",
    "Clinics",
    "ClinicsError",
    "clinic_data_dir",
    "clinic_database_url",
    "clinic_schema",
    "load_clinics",
]

#: A clinic id: in URLs (``/c/<id>/``), directory and schema names. Lowercase, digits, ``-``/``_``.
CLINIC_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
#: A WAHA session name: it goes into WAHA's URLs (``/api/sessions/<name>``) as it is.
SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEYS = ("session", "catalog", "waha_url", "waha_api_key_env")


class ClinicsError(ScriptError):
    """The clinics file is missing, unreadable or wrong; ``problems`` say where."""

    exit_code = 2


@dataclass(frozen=True)
class Clinic:
    """One clinic of a deployment, as its entry in the clinics file says.

    Attributes:
        id: the clinic's id (:data:`CLINIC_ID`).
        session: the WAHA session its patients write to.
        catalog: its catalog folder (absolute).
        waha_url: its WAHA server when not the deployment's (``WAHA_URL``); None: the same.
        waha_api_key_env: the environment variable holding that server's key; None: the
            deployment's key.
        pos: where the entry is written (for messages).
    """

    id: str
    session: str
    catalog: Path
    waha_url: str | None = None
    waha_api_key_env: str | None = None
    pos: Pos = Pos("<memory>")  # noqa: RUF009 - a frozen value


@dataclass(frozen=True)
class Clinics:
    """Every clinic of the deployment, in file order."""

    clinics: tuple[Clinic, ...]
    path: Path

    def get(self, clinic_id: str) -> Clinic:
        """The clinic called ``clinic_id``.

        Raises:
            ClinicsError: no clinic has that id (the known ids are listed).
        """
        for clinic in self.clinics:
            if clinic.id == clinic_id:
                return clinic
        known = ", ".join(c.id for c in self.clinics)
        raise ClinicsError(f"nenhuma clínica '{clinic_id}' em {self.path} (há: {known})")

    def by_session(self, session: str) -> Clinic | None:
        """The clinic whose WAHA session is ``session``; None when none is."""
        return next((c for c in self.clinics if c.session == session), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.clinics)


def load_clinics(path: str | Path) -> Clinics:
    """Read and check a clinics file (see the module docstring for its shape).

    Every problem is collected before raising: unknown keys, a missing ``session`` or
    ``catalog``, a bad id, a session or an id used twice, a catalog folder that does not exist.
    A catalog's own errors are not looked at here: a broken catalog stops its clinic only.

    Raises:
        ClinicsError: the file cannot be read, or has problems (``problems``, with lines).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ClinicsError(
            f"não dá para ler o arquivo de clínicas {file}: não é um texto UTF-8 (byte "
            f"{exc.start + 1}); salve-o como UTF-8"
        ) from None
    except IsADirectoryError:
        raise ClinicsError(
            f"não dá para ler o arquivo de clínicas {file}: é uma pasta, não um arquivo"
        ) from None
    except FileNotFoundError:
        raise ClinicsError(f"não dá para ler o arquivo de clínicas {file}: não existe") from None
    except OSError as exc:
        raise ClinicsError(f"não dá para ler o arquivo de clínicas {file}: {exc}") from None
    root, problems = parse(text, str(file))
    reader = Reader(str(file))
    reader.problems.extend(problems)
    if root is None and not problems:  # 0 bytes, blank or only comments
        reader.report(
            Pos(str(file), 1, 1),
            "empty",
            f"o arquivo de clínicas está vazio: {file} (escreva clinics: e uma clínica por id)",
        )
    top = reader.mapping(root, "o arquivo de clínicas", ("clinics",), ("clinics",))
    entries = top.get("clinics") if top is not None else None
    clinics: list[Clinic] = []
    if entries is not None and not isinstance(entries, YMap):
        reader.report(entries.pos, "bad-type", "clinics deveria ser um bloco: id da clínica: …")
    elif isinstance(entries, YMap):
        if not entries.entries:
            reader.report(entries.pos, "empty", "clinics não tem nenhuma clínica")
        for clinic_id, node in entries.items():
            clinic = _read_clinic(reader, clinic_id, node, entries.key_pos[clinic_id], file)
            if clinic is not None:
                clinics.append(clinic)
        _check_unique(reader, clinics)
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors:
        raise ClinicsError(_summary(file, errors), errors)
    return Clinics(tuple(clinics), file.resolve())


def _read_clinic(reader: Reader, clinic_id: str, node: YNode, at: Pos, file: Path) -> Clinic | None:
    what = f"a clínica '{clinic_id}'"
    if not CLINIC_ID.match(clinic_id):
        reader.report(
            at,
            "bad-id",
            f"'{clinic_id}' não serve de id de clínica: use letras minúsculas, números, - ou _ "
            "(até 40), começando por letra ou número",
        )
    entry = reader.mapping(node, what, _KEYS, ("session", "catalog"))
    if entry is None:
        return None
    session = _session(reader, entry.get("session"), what)
    catalog_text = reader.text(entry.get("catalog"), f"catalog de {what}")
    waha_url = _waha_url(reader, entry.get("waha_url"), what)
    key_env = reader.text(entry.get("waha_api_key_env"), f"waha_api_key_env de {what}")
    if not catalog_text:
        return None
    catalog = (file.parent / catalog_text).resolve()
    if not catalog.is_dir():
        catalog_node = entry.get("catalog")
        pos = catalog_node.pos if catalog_node is not None else entry.pos
        if catalog.exists():
            message = f"{catalog} é um arquivo, não uma pasta de catálogo"
        else:
            message = f"a pasta de catálogo {catalog} não existe"
        reader.report(pos, "missing-catalog", message)
    if not session or not CLINIC_ID.match(clinic_id):
        return None
    return Clinic(clinic_id, session, catalog, waha_url or None, key_env or None, entry.pos)


def _session(reader: Reader, node: YNode | None, what: str) -> str | None:
    """The WAHA session name, or None (reported). A bare YAML number (``session: 007``) is
    refused rather than read back as text: YAML turns ``007`` into 7 and ``0x1F`` into 31, so
    the text would not be the session written; quoted, it is the text as written."""
    value = node.value if isinstance(node, YScalar) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and node is not None:
        reader.report(
            node.pos,
            "bad-session",
            f"session de {what} deveria ser o nome da sessão do WAHA, um texto; escreva entre "
            f'aspas: session: "{value}"',
        )
        return None
    session = reader.text(node, f"session de {what}")
    if session and not SESSION.match(session):
        assert node is not None
        reader.report(
            node.pos,
            "bad-session",
            f"'{session}' não serve de nome de sessão do WAHA (session de {what}): use letras, "
            "números, _ ou - (até 64), sem espaços nem /",
        )
        return None
    return session


def _waha_url(reader: Reader, node: YNode | None, what: str) -> str | None:
    """The clinic's WAHA server, an ``http(s)://host…`` URL; None when absent or wrong."""
    url = reader.text(node, f"waha_url de {what}")
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        good = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is not a number raises
    except ValueError:
        good = False
    if not good:
        assert node is not None
        reader.report(
            node.pos,
            "bad-url",
            f"waha_url de {what} deveria ser um endereço http:// ou https:// (ex.: "
            f"http://waha-2:3000), mas é '{url}'",
        )
        return None
    return url.strip()


def _check_unique(reader: Reader, clinics: list[Clinic]) -> None:
    seen: dict[str, Clinic] = {}
    for clinic in clinics:
        first = seen.setdefault(clinic.session, clinic)
        if first is not clinic:
            reader.report(
                clinic.pos,
                "duplicate-session",
                f"a sessão '{clinic.session}' já é da clínica '{first.id}' ({first.pos}): "
                "cada número (sessão do WAHA) é de uma clínica só",
            )
    schemas: dict[str, str] = {}  # "a-b" and "a_b" would share a schema
    for clinic in clinics:
        other = schemas.setdefault(clinic_schema(clinic.id), clinic.id)
        if other != clinic.id:
            reader.report(
                clinic.pos,
                "duplicate-id",
                f"'{clinic.id}' e '{other}' dariam o mesmo nome no banco "
                f"({clinic_schema(clinic.id)}): troque um dos dois",
            )


def _summary(file: Path, errors: list[Problem]) -> str:
    lines = "\n".join(str(p) for p in errors)
    return f"o arquivo de clínicas {file} tem {len(errors)} erro(s):\n{lines}"


def clinic_data_dir(data_dir: str | Path, clinic_id: str) -> Path:
    """The clinic's own data directory inside the deployment's: ``<data>/clinics/<id>``
    (its SQLite history, index, models, spool, lock)."""
    return Path(data_dir) / "clinics" / clinic_id


def clinic_schema(clinic_id: str, within: str | None = None) -> str:
    """The clinic's PostgreSQL schema: ``clinic_<id>`` (``-`` written as ``_``), or
    ``<within>_<id>`` when the deployment's URL puts its tables in schema ``within``."""
    return f"{within or 'clinic'}_{clinic_id.replace('-', '_')}"


_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def clinic_database_url(url: str | None, clinic_id: str) -> str | None:
    """The clinic's database: None (SQLite in its data dir) when ``url`` is None or SQLite;
    for ``postgresql://…``, the same database with ``search_path`` set to the clinic's schema
    (:func:`clinic_schema`; a ``search_path`` the URL's ``options`` already set names the
    deployment's schema, which prefixes the clinic's). The schema itself is created by
    :func:`clinicflow.database.connect` when missing."""
    if not url or not url.startswith(("postgresql://", "postgres://")):
        return None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join(v for k, v in query if k == "options")
    found = _SEARCH_PATH.search(options)
    schema = clinic_schema(clinic_id, found.group(1).strip("\"'") if found else None)
    options = _SEARCH_PATH.sub("", options).strip()
    rest = [(k, v) for k, v in query if k != "options"]
    rest.append(("options", f"{options} -csearch_path={schema}".strip()))
    return urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
