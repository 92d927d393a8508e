"""The tiny condition language of ``when: - if: ...``, parsed and evaluated without ``eval``.

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" expr ")" | compare
    compare := NAME [("==" | "!=" | "<" | "<=" | ">" | ">=") value]
    value   := 'text' | "text" | NUMBER | yes | no | sim | não | true | false | WORD

A condition only ever reads stored slot values: text, ``bool`` (yes_no), numbers and ISO dates;
``campo == 'x'`` on a choice of several options holds when ``x`` is one of them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clinicflow.errors import ClinicflowError
from clinicflow.text import fold

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:[.,]\d+)?(?![\w]))
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<op>==|!=|<=|>=|<|>|\(|\))
      | (?P<word>[^\W\d][\w]*)
    )""",
    re.VERBOSE,
)
_TRUE_WORDS = frozenset({"yes", "sim", "true", "s"})
_FALSE_WORDS = frozenset({"no", "nao", "false", "n"})
_KEYWORDS = frozenset({"and", "or", "not"})
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

Literal = str | float | bool


class ConditionSyntaxError(ClinicflowError):
    """A condition cannot be read; ``col`` is the 1-based column inside the condition."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(f"coluna {col}: {message}")
        self.reason = message
        self.col = col


@dataclass(frozen=True)
class Filled:
    """``slot``: the slot has a value (for yes_no: it is "sim")."""

    slot: str
    col: int = 1

    def slots(self) -> tuple[str, ...]:
        return (self.slot,)


@dataclass(frozen=True)
class Compare:
    """``slot OP value``."""

    slot: str
    op: str
    value: Literal
    col: int = 1

    def slots(self) -> tuple[str, ...]:
        return (self.slot,)


@dataclass(frozen=True)
class Not:
    operand: Condition

    def slots(self) -> tuple[str, ...]:
        return self.operand.slots()


@dataclass(frozen=True)
class And:
    left: Condition
    right: Condition

    def slots(self) -> tuple[str, ...]:
        return _merge(self.left.slots(), self.right.slots())


@dataclass(frozen=True)
class Or:
    left: Condition
    right: Condition

    def slots(self) -> tuple[str, ...]:
        return _merge(self.left.slots(), self.right.slots())


Condition = Filled | Compare | Not | And | Or


def _merge(left: tuple[str, ...], right: tuple[str, ...]) -> tuple[str, ...]:
    return left + tuple(name for name in right if name not in left)


@dataclass(frozen=True)
class _Token:
    kind: str  # num | str | op | word | end
    text: str
    col: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        match = _TOKEN_RE.match(text, index)
        if match is None or match.lastgroup is None:
            bad = text[index]
            if bad in "'\"":
                raise ConditionSyntaxError(f"falta fechar as aspas {bad} deste texto", index + 1)
            raise ConditionSyntaxError(f"não entendi o sinal '{bad}'", index + 1)
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        index = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def expr(self) -> Condition:
        left = self.conj()
        while self.is_word("or"):
            self.take()
            left = Or(left, self.conj())
        return left

    def conj(self) -> Condition:
        left = self.unary()
        while self.is_word("and"):
            self.take()
            left = And(left, self.unary())
        return left

    def unary(self) -> Condition:
        token = self.peek()
        if self.is_word("not"):
            self.take()
            return Not(self.unary())
        if token.text == "(":
            self.take()
            inner = self.expr()
            if self.peek().text != ")":
                raise ConditionSyntaxError("falta fechar o parêntese ')'", self.peek().col)
            self.take()
            return inner
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            found = f"'{token.text}'" if token.text else "o fim"
            raise ConditionSyntaxError(f"esperava o nome de um campo, encontrei {found}", token.col)
        self.take()
        op = self.peek()
        if op.kind != "op" or op.text in "()":
            return Filled(token.text, token.col)
        self.take()
        return Compare(token.text, op.text, self.literal(op.text), token.col)

    def literal(self, op: str) -> Literal:
        token = self.take()
        if token.kind == "str":
            return token.text[1:-1]
        if token.kind == "num":
            return float(token.text.replace(",", "."))
        if token.kind == "word" and token.text.lower() not in _KEYWORDS:
            folded = fold(token.text)
            if folded in _TRUE_WORDS:
                return True
            if folded in _FALSE_WORDS:
                return False
            return token.text
        found = f"'{token.text}'" if token.text else "o fim"
        raise ConditionSyntaxError(
            f"esperava um valor depois de '{op}', encontrei {found}", token.col
        )


def parse(text: str) -> Condition:
    """Parse a condition such as ``idade >= 45 and not tipo``.

    Raises:
        ConditionSyntaxError: with the 1-based column of the first problem.
    """
    parser = _Parser(text)
    if parser.peek().kind == "end":
        raise ConditionSyntaxError("a condição está vazia", 1)
    condition = parser.expr()
    rest = parser.peek()
    if rest.kind != "end":
        raise ConditionSyntaxError(f"sobrou '{rest.text}'; junte as partes com and / or", rest.col)
    return condition


def _is_filled(value: object) -> bool:
    return value is not None and value is not False and value != ""


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = fold(value).strip()
        if folded in _TRUE_WORDS:
            return True
        if folded in _FALSE_WORDS:
            return False
    return None


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", "."))
        except ValueError:
            return None
    return None


def _compare(stored: object, op: str, literal: Literal) -> bool:
    if isinstance(stored, list):
        # A choice of several options: "==" holds when one of them is the value.
        hit = any(_compare(item, "==", literal) for item in stored)
        return hit if op == "==" else (not hit if op == "!=" else False)
    if not _is_filled(stored) and stored is not False:
        # An empty slot is different from every value and has no order.
        return op == "!="
    left: object
    right: object
    if isinstance(literal, bool):
        left, right = _as_bool(stored), literal
    elif isinstance(literal, float):
        left, right = _as_number(stored), literal
    else:
        # Text ignores case and accents; ISO dates compare correctly as text.
        left, right = fold(str(stored)).strip(), fold(literal).strip()
    if left is None:
        return op == "!="
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, bool) or isinstance(right, bool):
        return False  # sim/não have no order
    if type(left) is not type(right):
        return False
    return bool(_ORDER[op](left, right))


def evaluate(condition: Condition, values: Mapping[str, object]) -> bool:
    """Whether ``condition`` holds for the stored slot ``values`` (missing = empty)."""
    if isinstance(condition, Filled):
        return _is_filled(values.get(condition.slot))
    if isinstance(condition, Compare):
        return _compare(values.get(condition.slot), condition.op, condition.value)
    if isinstance(condition, Not):
        return not evaluate(condition.operand, values)
    if isinstance(condition, And):
        return evaluate(condition.left, values) and evaluate(condition.right, values)
    return evaluate(condition.left, values) or evaluate(condition.right, values)
