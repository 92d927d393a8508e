from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinicflow.cli import main

DATA = Path(__file__).parent / "data"
MIN = DATA / "catalog_min"
LINT = DATA / "lint"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param([str(MIN)], 0, id="clean-catalog"),
        pytest.param(["--catalog", str(MIN)], 0, id="catalog-option"),
        pytest.param([str(LINT / "unused_slot.yaml")], 0, id="warnings-only"),
        pytest.param([str(LINT / "dead_end.yaml")], 1, id="errors"),
        pytest.param([str(LINT / "nao_existe.yaml")], 2, id="missing-file"),
        pytest.param([str(DATA / "vazio")], 2, id="folder-without-clinic"),
    ],
)
def test_exit_codes(args: list[str], code: int) -> None:
    result = CliRunner().invoke(main, ["lint", *args])
    assert result.exit_code == code, result.output


def test_output_lines_and_summary() -> None:
    result = CliRunner().invoke(main, ["lint", str(LINT / "bad_type.yaml")])
    lines = result.output.splitlines()
    assert (
        lines[0]
        == f"{LINT / 'bad_type.yaml'}:9:5: error bad-type: " + lines[0].split("bad-type: ", 1)[1]
    )
    assert lines[-1] == "5 erros, 0 avisos em 1 arquivo"


def test_json_output() -> None:
    result = CliRunner().invoke(main, ["lint", "--json", str(LINT / "dead_end.yaml")])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data == [
        {
            "file": str(LINT / "dead_end.yaml"),
            "line": 11,
            "col": 3,
            "severity": "error",
            "code": "dead-end",
            "message": data[0]["message"],
        }
    ]


def test_graph_command() -> None:
    result = CliRunner().invoke(main, ["graph", "consulta", "--catalog", str(MIN)])
    assert result.exit_code == 0
    assert result.output.startswith("stateDiagram-v2\n")
    result = CliRunner().invoke(
        main, ["graph", "consulta", "--catalog", str(MIN), "--format", "dot"]
    )
    assert result.output.startswith('digraph "consulta"')


def test_graph_unknown_script_and_broken_catalog(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["graph", "nada", "--catalog", str(MIN)])
    assert result.exit_code == 2 and "consulta" in result.output
    result = CliRunner().invoke(main, ["graph", "x", "--catalog", str(tmp_path / "nada")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_graph_on_catalog_with_errors(tmp_path: Path) -> None:
    (tmp_path / "clinic.yaml").write_text((MIN / "clinic.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "x.yaml").write_text((LINT / "dead_end.yaml").read_text("utf-8"), "utf-8")
    result = CliRunner().invoke(main, ["graph", "dead_end", "--catalog", str(tmp_path)])
    assert result.exit_code == 1
    assert "dead-end" in result.output


def test_commands_have_help() -> None:
    for name, command in main.commands.items():
        assert command.help, name


def test_lint_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from clinicflow.cli import main\n"
        "result = CliRunner().invoke(main, ['lint'])\n"
        "heavy = [m for m in ('lancedb', 'langgraph', 'google.genai', 'aiohttp') "
        "if m in sys.modules]\n"
        "print(result.exit_code, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


def _alias_bomb(levels: int) -> str:
    """Each level repeats the one above nine times: 9**levels values once expanded."""
    lines = ["id: bomb", 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        pytest.param(_alias_bomb(8), 8, 10, id="alias-bomb"),
        pytest.param("id: loop\nlista: &l [1, *l]\n", 2, 15, id="alias-of-itself"),
    ],
)
def test_lint_refuses_aliases_that_never_end_with_file_line_col(
    tmp_path: Path, text: str, line: int, col: int
) -> None:
    # Staff edit these files, and the same loader serves serve, SIGHUP and /admin/reload.
    (tmp_path / "clinic.yaml").write_text((MIN / "clinic.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "bomb.yaml").write_text(text, "utf-8")
    result = CliRunner().invoke(main, ["lint", "--catalog", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert f"bomb.yaml:{line}:{col}: error yaml-alias" in result.output
    assert "apelido" in result.output and "Traceback" not in result.output


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    from clinicflow.yamlsrc import YMap, parse

    node, problems = parse("a: &x [1, 2]\nb: *x\n", "ok.yaml")
    assert problems == [] and isinstance(node, YMap) and set(dict(node.items())) == {"a", "b"}
