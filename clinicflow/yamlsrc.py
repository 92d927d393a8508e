"""Reading catalog YAML into position-aware nodes, and checking their shape.

PyYAML's SafeLoader turns ``yes``/``no``/``on``/``off`` into booleans and ``2026-12-25`` into a
date, so a state called ``no`` or an option ``on`` would silently change meaning. Our loader
keeps them as text (only ``true``/``false`` are booleans) and every value remembers its
``file:line:col`` so lint can point a clinic secretary at the exact spot.

:class:`Reader` is the small toolkit the loader uses to read those nodes: each accessor checks
the YAML type, records a :class:`~clinicflow.problems.Problem` when it is wrong, and returns
``None`` instead of raising, so one pass reports every problem in a file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import yaml

from clinicflow.model import Pos
from clinicflow.problems import Problem, Severity

_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


#: Most values a file may hold once its aliases (``*name``) are expanded. A catalog file holds
#: a few thousand; an "alias bomb" (each level repeating the one above) would hold billions.
MAX_EXPANDED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans and dates stay text; it also notes
    where each alias (``*name``) is used, to point at it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_marks: list[tuple[str, yaml.Mark, yaml.Node]] = []

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event() if self.check_event(yaml.AliasEvent) else None
        node: yaml.Node | None = super().compose_node(parent, index)
        if event is not None and node is not None:
            self.alias_marks.append((str(event.anchor), event.start_mark, node))
        return node


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

Scalar = str | int | float | bool | None


@dataclass(frozen=True, eq=False)
class YScalar:
    """A scalar value; ``quoted`` tells whether it was written between quotes."""

    value: Scalar
    pos: Pos
    quoted: bool = False


@dataclass(frozen=True, eq=False)
class YSeq:
    """A YAML list."""

    items: tuple[YNode, ...]
    pos: Pos


@dataclass(frozen=True, eq=False)
class YMap:
    """A YAML mapping; keys are always the text written in the file."""

    entries: Mapping[str, YNode]
    key_pos: Mapping[str, Pos]
    pos: Pos

    def get(self, key: str) -> YNode | None:
        return self.entries.get(key)

    def items(self) -> Iterator[tuple[str, YNode]]:
        return iter(self.entries.items())


YNode = YScalar | YSeq | YMap


class _AnyKey(tuple[str, ...]):
    """An ``allowed`` tuple that contains every key (free-form mappings such as weights)."""

    def __contains__(self, key: object) -> bool:
        return True


#: Pass as ``allowed`` to :meth:`Reader.mapping` for mappings whose keys are names.
ANY_KEY: tuple[str, ...] = _AnyKey()


def _pos(file: str, mark: yaml.Mark | None) -> Pos:
    if mark is None:
        return Pos(file, 1, 1)
    return Pos(file, mark.line + 1, mark.column + 1)


def parse(text: str, file: str) -> tuple[YNode | None, list[Problem]]:
    """Parse one YAML document into nodes that remember their position.

    Args:
        text: the file's content.
        file: the name used in positions and problems.

    Returns:
        The root node (``None`` for an empty or unparsable document) and the problems found:
        ``yaml-syntax`` for syntax errors, ``duplicate-id`` for a key written twice.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "erro de sintaxe"
        return None, [
            Problem(file, *_line_col(file, mark), "error", "yaml-syntax", _syntax_msg(what))
        ]
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error we know is marked
        return None, [Problem(file, 1, 1, "error", "yaml-syntax", str(exc))]
    except RecursionError:
        return None, [_too_deep(file)]
    finally:
        loader.dispose()
    if root is None:
        return None, []
    refused = _alias_problem(root, loader, file)
    if refused is not None:
        return None, [refused]
    problems: list[Problem] = []
    try:
        return _convert(root, file, loader, problems), problems
    except RecursionError:
        return None, [_too_deep(file)]


def _too_deep(file: str) -> Problem:
    return Problem(file, 1, 1, "error", "yaml-syntax",
                   "o arquivo tem blocos dentro de blocos demais; confira os recuos")  # fmt: skip


def _alias_problem(root: yaml.Node, loader: _Loader, file: str) -> Problem | None:
    """An alias that refers to itself, or aliases expanding past MAX_EXPANDED_NODES.

    Sizes are counted once per node (the composed graph shares aliased nodes), so a bomb is
    measured without being expanded.
    """
    if not loader.alias_marks:
        return None
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    cycle: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            cycle.append(node)
            return MAX_EXPANDED_NODES + 1
        open_.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_EXPANDED_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_EXPANDED_NODES:
                    break
        open_.discard(key)
        sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
        return sizes[key]

    try:
        too_big = size(root) > MAX_EXPANDED_NODES
    except RecursionError:  # nesting deeper than Python's stack: refuse it as well
        too_big = True
    if not too_big:
        return None
    # The alias that closes the loop, else the one that multiplies the most (the first such).
    if cycle:
        anchor, mark = next((name, where) for name, where, target in loader.alias_marks
                            if target is cycle[0])  # fmt: skip
    else:
        biggest = max(sizes.get(id(target), 0) for _, _, target in loader.alias_marks)
        anchor, mark = next((name, where) for name, where, target in loader.alias_marks
                            if sizes.get(id(target), 0) == biggest)  # fmt: skip
    line, col = _line_col(file, mark)
    if cycle:
        why = f"o apelido *{anchor} repete o próprio bloco onde está (nunca termina)"
    else:
        why = (
            f"os apelidos YAML (como *{anchor}) se multiplicam demais: o arquivo passaria de "
            f"{MAX_EXPANDED_NODES} valores"
        )
    return Problem(file, line, col, "error", "yaml-alias", f"{why}; escreva os valores por extenso")


def _line_col(file: str, mark: yaml.Mark | None) -> tuple[int, int]:
    pos = _pos(file, mark)
    return pos.line, pos.col


# PyYAML's messages, in words a clinic secretary can act on.
_SYNTAX_HINTS = (
    (
        "mapping values are not allowed",
        "dois-pontos onde não se espera; um texto com ':' precisa ficar entre aspas",
    ),
    (
        "expected <block end>",
        "o recuo (os espaços no começo da linha) não está alinhado com as linhas de cima",
    ),
    ("found character '\\t'", "há uma tabulação; use apenas espaços para recuar"),
    ("found unexpected end of stream", "umas aspas foram abertas e não fechadas"),
    ("quoted scalar", "umas aspas foram abertas e não fechadas"),
    ("expected ',' or ']'", "uma lista entre [ ] não foi fechada"),
    ("expected ',' or '}'", "um bloco entre { } não foi fechado"),
    ("could not find expected ':'", "falta o dois-pontos depois de uma chave"),
    ("found undefined alias", "há um * (apelido YAML) sem a âncora & correspondente"),
)


def _syntax_msg(what: str) -> str:
    for needle, hint in _SYNTAX_HINTS:
        if needle in what:
            return f"o arquivo não é um YAML válido: {hint}"
    return f"o arquivo não é um YAML válido ({what}); confira aspas, dois-pontos e recuos"


_CONTRACTIONS = re.compile(r"\b(de|em) (o|a|os|as)\b")
_CONTRACTED = {"de": "d", "em": "n"}


def contract(message: str) -> str:
    """Portuguese contractions ("de o estado" -> "do estado"), outside quoted names."""
    parts = message.split("'")
    for index in range(0, len(parts), 2):
        parts[index] = _CONTRACTIONS.sub(lambda m: _CONTRACTED[m[1]] + m[2], parts[index])
    return "'".join(parts)


def _convert(node: yaml.Node, file: str, loader: _Loader, problems: list[Problem]) -> YNode:
    pos = _pos(file, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        entries: dict[str, YNode] = {}
        key_pos: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            # Keys keep the text as written: a state called `no` or `1` stays "no" / "1".
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            kpos = _pos(file, key_node.start_mark)
            if key in entries:
                problems.append(
                    Problem(
                        file,
                        kpos.line,
                        kpos.col,
                        "error",
                        "duplicate-id",
                        f"'{key}' aparece duas vezes neste bloco (a primeira na linha "
                        f"{key_pos[key].line}); a segunda apagaria a primeira",
                    )
                )
                continue
            key_pos[key] = kpos
            entries[key] = _convert(value_node, file, loader, problems)
        return YMap(entries, key_pos, pos)
    if isinstance(node, yaml.SequenceNode):
        return YSeq(tuple(_convert(item, file, loader, problems) for item in node.value), pos)
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        value = str(node.value)
        problems.append(
            Problem(
                file,
                pos.line,
                pos.col,
                "error",
                "yaml-syntax",
                f"marca YAML {node.tag} não é aceita aqui; escreva o valor como texto",
            )
        )
    if not isinstance(value, str | int | float | bool | None):
        # Tags such as !!binary or !!set build other objects; the catalog only uses text.
        value = str(node.value)
    return YScalar(value, pos, quoted=bool(getattr(node, "style", None)))


def positions(node: YNode, prefix: str = "") -> dict[str, Pos]:
    """Every value's position by dotted path (``states.inicio.next``, ``slots.nome.ask``).

    List items use their index: ``states.explica.say.0``; a key's own position is under
    ``path#key`` (``states.explica#key``).
    """
    out: dict[str, Pos] = {prefix: node.pos} if prefix else {}
    if isinstance(node, YMap):
        for key, child in node.items():
            path = f"{prefix}.{key}" if prefix else key
            out[f"{path}#key"] = node.key_pos[key]
            out.update(positions(child, path))
    elif isinstance(node, YSeq):
        for index, child in enumerate(node.items):
            out.update(positions(child, f"{prefix}.{index}" if prefix else str(index)))
    return out


_KIND = {YMap: "um bloco de chaves", YSeq: "uma lista", YScalar: "um valor simples"}


def kind(node: YNode) -> str:
    """How the node is called in messages for the secretary."""
    if isinstance(node, YScalar):
        if isinstance(node.value, bool):
            return "true/false"
        if isinstance(node.value, int | float):
            return "um número"
        if node.value is None:
            return "vazio"
        return "um texto"
    return _KIND[type(node)]


@dataclass
class Reader:
    """Typed accessors over nodes of one file that collect problems instead of raising."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def report(self, pos: Pos, code: str, message: str, severity: Severity = "error") -> None:
        message = contract(message)
        self.problems.append(Problem(self.file, pos.line, pos.col, severity, code, message))

    def mapping(
        self,
        node: YNode | None,
        what: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> YMap | None:
        """``node`` as a mapping with only ``allowed`` keys and all ``required`` ones."""
        if node is None:
            return None
        if not isinstance(node, YMap):
            self.report(
                node.pos, "bad-type", f"{what} deveria ser um bloco de chaves, mas é {kind(node)}"
            )
            return None
        for key, kpos in node.key_pos.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f" Você quis dizer '{close[0]}'?" if close else ""
                self.report(
                    kpos,
                    "unknown-key",
                    f"'{key}' não é uma chave conhecida em {what}."
                    f"{hint} Chaves aceitas: {', '.join(allowed)}",
                )
        for key in required:
            if key not in node.entries:
                self.report(node.pos, "missing-key", f"falta '{key}' em {what}")
        return node

    def text(self, node: YNode | None, what: str, *, allow_empty: bool = False) -> str | None:
        """A text; numbers are accepted as written (``version: 3`` is ``"3"``)."""
        if node is None:
            return None
        if isinstance(node, YScalar) and isinstance(node.value, str | int | float):
            value = node.value if isinstance(node.value, str) else str(node.value)
            if not isinstance(node.value, bool):
                if not allow_empty and not value.strip():
                    self.report(node.pos, "empty-text", f"{what} está vazio")
                return value
        if isinstance(node, YScalar) and node.value is None:
            if not allow_empty:
                self.report(node.pos, "empty-text", f"{what} está vazio")
            return ""
        self.report(node.pos, "bad-type", f"{what} deveria ser um texto, mas é {kind(node)}")
        return None

    def texts(self, node: YNode | None, what: str, *, single_ok: bool = True) -> list[str]:
        """A list of texts (or, when ``single_ok``, one text standing for a list of one)."""
        if node is None:
            return []
        if isinstance(node, YSeq):
            out = [self.text(item, f"{what} (item {i + 1})") for i, item in enumerate(node.items)]
            return [item for item in out if item is not None]
        if single_ok and isinstance(node, YScalar):
            value = self.text(node, what)
            return [] if value is None else [value]
        self.report(node.pos, "bad-type", f"{what} deveria ser uma lista, mas é {kind(node)}")
        return []

    def seq(self, node: YNode | None, what: str) -> tuple[YNode, ...]:
        if node is None:
            return ()
        if isinstance(node, YSeq):
            return node.items
        self.report(node.pos, "bad-type", f"{what} deveria ser uma lista, mas é {kind(node)}")
        return ()

    def flag(self, node: YNode | None, what: str) -> bool | None:
        if node is None:
            return None
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.report(node.pos, "bad-type", f"{what} deveria ser true ou false, mas é {kind(node)}")
        return None

    def number(self, node: YNode | None, what: str, *, integer: bool = False) -> float | None:
        if node is None:
            return None
        value = node.value if isinstance(node, YScalar) else None
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if is_number and (not integer or isinstance(value, int)):
            return value  # type: ignore[return-value]
        expected = "um número inteiro" if integer else "um número"
        self.report(node.pos, "bad-type", f"{what} deveria ser {expected}, mas é {kind(node)}")
        return None
