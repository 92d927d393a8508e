"""Database URLs: chosen, checked and never printed with their password."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinicflow.database import DatabaseUrl, resolve
from clinicflow.errors import StorageError


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://clinic:s3cret@db.example:5432/clinic",
        "postgresql://db.example/clinic?user=clinic&password=s3cret&sslmode=require",
        "postgresql://clinic:s3cret@[::1",
    ],
)
def test_the_password_never_shows(url: str) -> None:
    shown = DatabaseUrl(url).redacted
    assert "s3cret" not in shown and "***" in shown


def test_a_malformed_url_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="não é válida") as caught:
        resolve(tmp_path, "postgresql://clinic:s3cret@[::1/clinic")
    assert "s3cret" not in str(caught.value)


def test_a_keyword_dsn_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="não suportada") as caught:
        resolve(tmp_path, "host=db.example password=s3cret dbname=clinic")
    assert "s3cret" not in str(caught.value)


def test_unset_is_the_data_dir_s_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLINICFLOW_DATABASE_URL", raising=False)
    assert resolve(tmp_path).sqlite_path == tmp_path / "clinicflow.db"
