"""Load a catalog folder (``clinic.yaml`` + one YAML file per script) into frozen values.

Loading reads every file, collects *all* problems (YAML syntax, shape, then the lint checks
that would break a conversation) and raises one :class:`~clinicflow.errors.ScriptError`
listing them, so a clinic secretary fixes everything in one go.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clinicflow.clinic_reader import read_clinic
from clinicflow.clock import Clock
from clinicflow.errors import CatalogNotFound, ScriptError
from clinicflow.model import Catalog, Clinic, Script
from clinicflow.problems import Problem
from clinicflow.script_reader import read_script
from clinicflow.yamlsrc import parse

CLINIC_FILE = "clinic.yaml"


def bundled_catalog_path() -> Path:
    """The folder of the catalog shipped with the package (``clinicflow.scripts_catalog``)."""
    return Path(str(importlib.resources.files("clinicflow.scripts_catalog")))


@dataclass(frozen=True)
class Reading:
    """What reading some catalog files produced, problems included, without raising."""

    clinic: Clinic | None
    scripts: tuple[Script, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]  # the files read (the ones lint reports on)
    digest: str  # sha256 over every file read, in name order


def catalog_files(folder: Path) -> list[Path]:
    """``clinic.yaml`` and the script files of a catalog folder (``_*.yaml`` are skipped)."""
    scripts = sorted(
        path
        for path in folder.glob("*.yaml")
        if path.name != CLINIC_FILE and not path.name.startswith("_")
    )
    return [folder / CLINIC_FILE, *scripts]


def _read_bytes(path: Path) -> tuple[str | None, bytes, Problem | None]:
    try:
        data = path.read_bytes()
        return data.decode("utf-8-sig"), data, None
    except FileNotFoundError:
        why = "o arquivo não existe"
    except UnicodeDecodeError:
        why = "o arquivo não está em UTF-8; salve-o como UTF-8 no editor"
    except OSError as exc:
        why = f"não foi possível ler o arquivo ({exc.strerror or exc})"
    return None, b"", Problem(str(path), 1, 1, "error", "unreadable", why)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read for these paths: folders become their catalog files."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        # A missing file is kept: reading it reports "unreadable" at its name.
        files.extend(catalog_files(path) if path.is_dir() else [path])
    return list(dict.fromkeys(files))


def read_files(paths: Iterable[str | Path]) -> Reading:
    """Read catalog files or folders, collecting every problem instead of raising.

    A script given alone is read together with the ``clinic.yaml`` beside it (if any), so
    its facts and intents are known; that clinic's own problems are not reported then.
    """
    files = expand_paths(paths)
    problems: list[Problem] = []
    clinic: Clinic | None = None
    scripts: list[Script] = []
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        text, data, trouble = _read_bytes(path)
        if trouble is not None:
            problems.append(trouble)
            continue
        assert text is not None
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        node, found = parse(text, str(path))
        problems.extend(found)
        if found and node is None:
            continue
        if path.name == CLINIC_FILE:
            clinic, reader = read_clinic(node, str(path))
        else:
            script, reader = read_script(node, str(path), hashlib.sha256(data).hexdigest())
            if script is not None:
                scripts.append(script)
        problems.extend(reader.problems)
    if clinic is None and scripts:
        clinic = _sibling_clinic(files)
    problems.extend(_duplicate_ids(scripts))
    return Reading(
        clinic, tuple(scripts), tuple(problems), tuple(map(str, files)), digest.hexdigest()
    )


def _sibling_clinic(files: Sequence[Path]) -> Clinic | None:
    for path in files:
        beside = path.parent / CLINIC_FILE
        text, _, trouble = _read_bytes(beside)
        if trouble is None and text is not None:
            node, _ = parse(text, str(beside))
            if node is not None:
                return read_clinic(node, str(beside))[0]
    return None


def _duplicate_ids(scripts: Sequence[Script]) -> list[Problem]:
    seen: dict[str, Script] = {}
    out: list[Problem] = []
    for script in scripts:
        first = seen.setdefault(script.id, script)
        if first is not script and script.id:
            pos = dict(script.positions).get("id", script.pos)
            out.append(
                Problem(
                    pos.file,
                    pos.line,
                    pos.col,
                    "error",
                    "duplicate-id",
                    f"o id '{script.id}' já é usado pelo roteiro {first.path}",
                )
            )
    return out


def check(paths: Iterable[str | Path], clock: Clock | None = None) -> list[Problem]:
    """Every problem in these files or catalog folders: reading problems plus lint checks.

    Args:
        paths: files and/or catalog folders.
        clock: "today" for the checks that depend on the date (default the system clock).

    Returns:
        The problems sorted by file and position (warnings included).
    """
    from clinicflow.lint import check_reading  # lint builds on the loader, not the reverse

    reading = read_files(paths)
    return sorted([*reading.problems, *check_reading(reading, clock)])


def _raise_on_errors(what: str, problems: Sequence[Problem]) -> None:
    errors = [problem for problem in problems if problem.severity == "error"]
    if not errors:
        return
    listing = "\n".join(str(problem) for problem in errors[:20])
    more = f"\n… e mais {len(errors) - 20}" if len(errors) > 20 else ""
    noun = "erro" if len(errors) == 1 else "erros"
    if any(problem.code == "unreadable" for problem in errors):
        raise CatalogNotFound(f"{what}: {listing}", errors)
    raise ScriptError(f"{what} tem {len(errors)} {noun}:\n{listing}{more}", errors)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load a catalog folder (``None``: the bundled catalog).

    Raises:
        CatalogNotFound: the folder or its ``clinic.yaml`` cannot be read.
        ScriptError: any file has errors; ``problems`` lists them all.
    """
    folder = bundled_catalog_path() if path is None else Path(path)
    if not folder.is_dir():
        raise CatalogNotFound(
            f"a pasta do catálogo {folder} não existe",
            [Problem(str(folder), 1, 1, "error", "unreadable", "a pasta não existe")],
        )
    from clinicflow.lint import check_reading

    reading = read_files([folder])
    _raise_on_errors(f"o catálogo {folder}", [*reading.problems, *check_reading(reading)])
    assert reading.clinic is not None  # a missing clinic.yaml is an "unreadable" error
    return Catalog(reading.clinic, reading.scripts, str(folder), reading.digest)


def load_script(path: str | Path) -> Script:
    """Load one procedure script file.

    Raises:
        CatalogNotFound: the file cannot be read.
        ScriptError: the script has errors.
    """
    from clinicflow.lint import check_reading

    reading = read_files([path])
    _raise_on_errors(f"o roteiro {path}", [*reading.problems, *check_reading(reading)])
    return reading.scripts[0]


def load_clinic(path: str | Path) -> Clinic:
    """Load a ``clinic.yaml`` file.

    Raises:
        CatalogNotFound: the file cannot be read.
        ScriptError: the file has errors.
    """
    path = Path(path)
    text, _, trouble = _read_bytes(path)
    if trouble is not None or text is None:
        raise CatalogNotFound(
            f"{path}: {trouble.message if trouble else ''}", [trouble] if trouble else []
        )
    node, problems = parse(text, str(path))
    clinic, reader = (
        read_clinic(node, str(path)) if node is not None or not problems else (None, None)
    )
    all_problems = [*problems, *(reader.problems if reader else [])]
    if clinic is not None:
        from clinicflow.lint import check_clinic

        all_problems.extend(check_clinic(clinic))
    _raise_on_errors(f"o arquivo {path}", all_problems)
    assert clinic is not None
    return clinic


def load_script_text(text: str, path: str) -> Script:
    """Rebuild a script from its stored source (a version a conversation is pinned to).

    Raises:
        ScriptError: the stored source no longer parses into a script.
    """
    data = text.encode("utf-8")
    node, problems = parse(text, path)
    script: Script | None = None
    if node is not None:
        script, reader = read_script(node, path, hashlib.sha256(data).hexdigest())
        problems = [*problems, *reader.problems]
    _raise_on_errors(f"o roteiro {path}", problems)
    if script is None:
        raise ScriptError(f"o roteiro {path} não pôde ser lido")
    return script
