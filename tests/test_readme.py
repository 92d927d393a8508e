"""README's conversation examples are true: the engine API block and the simulate example.

The API block's comments show what the calls return; each shown value must be what a fresh
engine over the bundled catalog returns for those messages (clock pinned to opening hours).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow import simulate as sim
from clinicflow.clock import ManualClock
from clinicflow.engine import Engine

README = (Path(__file__).parents[1] / "README.md").read_text("utf-8")
CHAT = "5511987654321@c.us"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    clock = ManualClock(datetime(2026, 3, 3, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo")))
    built = Engine.from_catalog(None, data_dir=tmp_path_factory.mktemp("readme"), clock=clock)
    yield built
    built.close_resources()


def _api_block() -> str:
    start = README.index("## For developers: the engine API")
    block = README[start:].split("```python", 1)[1].split("```", 1)[0]
    return block


def _shown(expression: str) -> str:
    """The value README's comment shows for a line starting with ``expression``."""
    for line in _api_block().splitlines():
        if line.startswith(expression + "  # "):
            return line.split("  # ", 1)[1]
    raise AssertionError(f"README's API example has no line for {expression!r}")


def test_readme_api_example_is_what_the_engine_returns(engine: Engine) -> None:
    first_text, second_text = re.findall(r'engine\.handle\(chat, "([^"]+)"\)', _api_block())
    result = engine.handle(CHAT, first_text)
    assert _shown("result.replies") == repr(result.replies)
    triple = (result.intent, result.source, result.confidence)
    assert _shown("result.intent, result.source, result.confidence").startswith(repr(triple))
    assert _shown("result.script_id, result.state, result.status") == repr(
        (result.script_id, result.state, result.status)
    )
    assert _shown("result.event_types") == repr(result.event_types)
    assert _shown("result.handoff") == repr(result.handoff)
    result = engine.handle(CHAT, second_text)
    assert result.handoff is not None and result.handoff.brief is not None
    assert _shown("result.handoff.reason, result.handoff.urgent") == repr(
        (result.handoff.reason, result.handoff.urgent)
    )
    brief = result.handoff.brief
    assert _shown("result.handoff.brief.period, result.handoff.brief.when") == repr(
        (brief.period, brief.when)
    )
    conv = engine.conversation(CHAT)
    assert conv is not None
    assert _shown("engine.conversation(chat).slots").startswith(repr(conv.slots))


def test_readme_simulate_example_passes(engine: Engine, tmp_path: Path) -> None:
    start = README.index("## Conversation tests (`clinicflow simulate`)")
    block = README[start:].split("```yaml", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.yaml"
    path.write_text(block, "utf-8")
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    records = sim.run(engine, clock, sim.load_file(path))
    assert [r.failures for r in records if r.failures] == []
    assert len(records) == block.count("- user:") + block.count("- handback:") + block.count(
        "- takeover:"
    ) + block.count("- wait:")
