"""State diagrams of a script for ``clinicflow graph``: Mermaid (renders on GitHub) and dot.

Both take optional overlay data (``counts`` per transition, ``stops`` per state) so a later
``--overlay`` can show where real conversations went and where patients stopped answering.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from clinicflow.model import Script, State

_SAFE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ANY_STATE = "__qualquer__"
# Characters Mermaid reads as syntax inside labels, replaced by look-alikes a reader accepts.
_MERMAID_SWAPS = (
    (">=", "≥"),
    ("<=", "≤"),
    ("!=", "≠"),
    ("==", "="),
    (">", "＞"),
    ("<", "＜"),
    ('"', "'"),
    (";", ","),
    ("#", "nº"),
    ("{", "("),
    ("}", ")"),
    (":", " -"),
    ("\n", " "),
)


@dataclass(frozen=True)
class Edge:
    """One arrow of the diagram."""

    source: str
    target: str
    label: str


def edges(script: Script) -> Iterator[Edge]:
    """Every transition of ``script`` with the label shown on its arrow.

    Script-wide ``on`` transitions start from a pseudo-state meaning "any state".
    """
    for intent, target in script.on:
        yield Edge(_ANY_STATE, target, intent)
    for state in script.states:
        for branch in state.when:
            yield Edge(state.name, branch.go, branch.condition)
        if state.next:
            yield Edge(state.name, state.next, "senão" if state.when else "")
        for intent, target in state.on:
            yield Edge(state.name, target, intent)
        if state.menu is not None:
            for number, item in enumerate(state.menu.items, start=1):
                yield Edge(state.name, item.go, f"{number}. {item.label}")
        slot = script.slot(state.collect) if state.collect else None
        action = slot.on_exhausted if slot is not None else None
        if action is not None and action.action == "goto" and action.target:
            yield Edge(state.name, action.target, f"sem resposta válida para {state.collect}")


def _state_title(state: State, stops: Mapping[str, int]) -> str:
    title = state.name
    if state.collect:
        title += f" · pergunta {state.collect}"
    if state.handoff:
        title += f" → secretária ({state.handoff})"
    if state.end:
        title += " · fim"
    if stops.get(state.name):
        title += f" — {stops[state.name]} pararam aqui"
    return title


def _with_count(edge: Edge, counts: Mapping[tuple[str, str], int]) -> str:
    count = counts.get((edge.source, edge.target))
    if count is None:
        return edge.label
    return f"{edge.label} ({count})" if edge.label else str(count)


def _mermaid_text(text: str) -> str:
    for old, new in _MERMAID_SWAPS:
        text = text.replace(old, new)
    return text.strip()


def mermaid(
    script: Script,
    counts: Mapping[tuple[str, str], int] | None = None,
    stops: Mapping[str, int] | None = None,
) -> str:
    """The script as a Mermaid ``stateDiagram-v2``.

    Args:
        script: the script to draw.
        counts: optional number of conversations per (from state, to state) transition.
        stops: optional number of conversations that stopped in each state.

    Returns:
        Mermaid source, ready for a fenced ``mermaid`` block on GitHub.
    """
    counts = counts or {}
    stops = stops or {}
    ids = {state.name: _node_id(state.name, index) for index, state in enumerate(script.states)}
    ids[_ANY_STATE] = "qualquer_estado"
    lines = ["stateDiagram-v2"]
    for state in script.states:
        lines.append(
            f'    state "{_mermaid_text(_state_title(state, stops))}" as {ids[state.name]}'
        )
    if script.on:
        lines.append('    state "qualquer estado" as qualquer_estado')
    if script.start in ids:
        lines.append(f"    [*] --> {ids[script.start]}")
    for edge in edges(script):
        target = ids.get(edge.target)
        if target is None:
            continue  # lint reports it; a diagram of the rest is still useful
        label = _mermaid_text(_with_count(edge, counts))
        lines.append(f"    {ids[edge.source]} --> {target}" + (f": {label}" if label else ""))
    for state in script.states:
        if state.end:
            lines.append(f"    {ids[state.name]} --> [*]")
    handoffs = [ids[state.name] for state in script.states if state.handoff]
    if handoffs:
        lines.append("    classDef handoff fill:#fde2e4,stroke:#c0392b,color:#000")
        lines.append(f"    class {','.join(handoffs)} handoff")
    return "\n".join(lines) + "\n"


def _node_id(name: str, index: int) -> str:
    # Mermaid keywords (end, state, note…) and non-ASCII names would break the source.
    return f"s_{name}" if _SAFE_ID.match(name) else f"s{index}"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dot(
    script: Script,
    counts: Mapping[tuple[str, str], int] | None = None,
    stops: Mapping[str, int] | None = None,
) -> str:
    """The script as a Graphviz ``digraph`` (same arguments as :func:`mermaid`)."""
    counts = counts or {}
    stops = stops or {}
    lines = [
        f'digraph "{_dot_text(script.id)}" {{',
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    "__start__" [shape=point, label=""];',
    ]
    for state in script.states:
        attrs = f'label="{_dot_text(_state_title(state, stops))}"'
        if state.handoff:
            attrs += ', style="rounded,filled", fillcolor="#fde2e4", color="#c0392b"'
        elif state.end:
            attrs += ", peripheries=2"
        lines.append(f'    "{_dot_text(state.name)}" [{attrs}];')
    if script.on:
        lines.append(f'    "{_ANY_STATE}" [label="qualquer estado", shape=ellipse, style=dashed];')
    names = {state.name for state in script.states} | {_ANY_STATE}
    if script.start in names:
        lines.append(f'    "__start__" -> "{_dot_text(script.start)}";')
    for edge in edges(script):
        if edge.target not in names:
            continue
        label = _with_count(edge, counts)
        attrs = f' [label="{_dot_text(label)}"]' if label else ""
        lines.append(f'    "{_dot_text(edge.source)}" -> "{_dot_text(edge.target)}"{attrs};')
    lines.append("}")
    return "\n".join(lines) + "\n"
