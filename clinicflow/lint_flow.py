"""Graph checks of ``clinicflow lint``: where each state leads, and where it cannot.

Reachability from ``start``, dead ends, and loops of automatic steps that never stop to
listen to the patient. Positions come from ``Script.positions`` (dotted paths).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from clinicflow.model import Pos, Script, State
from clinicflow.problems import Problem, Severity
from clinicflow.yamlsrc import contract


class Report:
    """Collects problems for one file, finding positions by dotted path."""

    def __init__(self, positions: Iterable[tuple[str, Pos]], fallback: Pos) -> None:
        self.where = dict(positions)
        self.fallback = fallback
        self.problems: list[Problem] = []

    def at(self, *paths: str) -> Pos:
        for path in paths:
            if path in self.where:
                return self.where[path]
        return self.fallback

    def add(self, pos: Pos, code: str, message: str, severity: Severity = "error") -> None:
        message = contract(message)
        self.problems.append(Problem(pos.file, pos.line, pos.col, severity, code, message))


def hint(name: str, known: Iterable[str]) -> str:
    """A "você quis dizer 'X'?" hint for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; você quis dizer '{close[0]}'?" if close else ""


def edges(script: Script, state: State, rep: Report) -> Iterator[tuple[str, Pos, str]]:
    """(target, where written, kind) for every way out of ``state``.

    ``kind`` is next, when, on, menu or exhausted (the collected slot's ``goto``).
    """
    base = f"states.{state.name}"
    if state.next:
        yield state.next, rep.at(f"{base}.next"), "next"
    for i, branch in enumerate(state.when):
        yield branch.go, rep.at(f"{base}.when.{i}.go"), "when"
    for intent, target in state.on:
        yield target, rep.at(f"{base}.on.{intent}"), "on"
    if state.menu is not None:
        for item in state.menu.items:
            yield item.go, item.pos, "menu"
    slot = script.slot(state.collect) if state.collect else None
    if slot is not None and slot.on_exhausted is not None and slot.on_exhausted.action == "goto":
        yield slot.on_exhausted.target or "", slot.on_exhausted.pos, "exhausted"


def check_graph(script: Script, rep: Report) -> None:
    """Unreachable states, dead ends, ``when`` without ``next``, follow-ups never sent, loops."""
    states = {state.name: state for state in script.states}
    targets = {name: [t for t, _, _ in edges(script, s, rep)] for name, s in states.items()}
    # Reachability: the script-wide `on` is available from every waiting state.
    seen: set[str] = set()
    todo = [script.start, *(target for _, target in script.on)]
    while todo:
        name = todo.pop()
        if name in states and name not in seen:
            seen.add(name)
            todo.extend(targets[name])
    for name, state in states.items():
        if name not in seen and script.start in states:
            rep.add(
                rep.at(f"states.{name}#key"),
                "unreachable-state",
                f"nenhum caminho leva ao estado '{name}' a partir do início ('{script.start}')",
                "warning",
            )
        has_exit = state.next or state.when or state.on or state.menu
        if not state.is_terminal and not has_exit:
            if script.on:
                rep.add(
                    rep.at(f"states.{name}#key"),
                    "dead-end",
                    f"o estado '{name}' só sai se "
                    "a paciente pedir algo do 'on' do roteiro; falta next, when, menu, "
                    "handoff ou end",
                    "warning",
                )
            else:
                rep.add(
                    rep.at(f"states.{name}#key"),
                    "dead-end",
                    f"a conversa fica presa no "
                    f"estado '{name}': falta next, when, on, menu, handoff ou end",
                )
        elif state.when and not state.next and not state.is_terminal:
            rep.add(
                rep.at(f"states.{name}.when"),
                "when-without-next",
                f"se nenhuma condição de '{name}' valer, a conversa para ali; acrescente um next",
                "warning",
            )
        if state.follow_ups and script.max_follow_ups == 0:
            rep.add(
                rep.at(f"states.{name}.follow_ups"),
                "follow-ups-disabled",
                "este estado tem follow_ups, mas max_follow_ups do roteiro é 0",
                "warning",
            )
    _check_cycles(script, states, rep)


def _check_cycles(script: Script, states: dict[str, State], rep: Report) -> None:
    """Loops of automatic steps (next/when) that nothing — a question, a menu — interrupts."""
    auto = {
        name: [t for t, _, kind in edges(script, s, rep) if kind in ("next", "when")]
        for name, s in states.items()
        if not (s.is_terminal or s.collect or s.menu or s.on)
    }
    for group in _components(auto):
        inside = set(group)
        loops = len(group) > 1 or group[0] in auto[group[0]]
        leaves = any(t not in inside for name in group for t in auto[name])
        if loops and not leaves:
            first = min(group, key=lambda n: list(states).index(n))
            rep.add(
                rep.at(f"states.{first}#key"),
                "cycle-without-exit",
                "os estados "
                f"{', '.join(sorted(inside))} levam um ao outro sem parar nunca para ouvir "
                "a paciente (sem collect, menu, on, handoff ou end)",
            )


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), restricted to the nodes of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            out.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return out
