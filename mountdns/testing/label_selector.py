"""Kubernetes label selectors, as the API server parses and matches them, for the API double.

The sync asks the API server for only the Pods it needs (`labelSelector`); a double that
ignored the parameter would hand it every Pod and hide a selector that selects the wrong
ones. The syntax is apimachinery's `labels.Parse`: terms joined by commas, all of which
must hold: `k=v` / `k==v`, `k!=v` (also true when `k` is absent), `k in (a,b)`,
`k notin (a,b)` (also true when absent), `k` (exists), `!k` (does not exist), and `k>n`,
`k<n` (an integer label value compared with n).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

Labels = Mapping[str, str]

_KEY = r"(?:[a-z0-9A-Z.\-]+/)?[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")
_COMPARE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=|>|<)\s*(?P<value>\S*)\s*$")


class InvalidSelector(ValueError):
    """A labelSelector the API server would refuse (400 BadRequest)."""


def _split_terms(selector: str) -> list[str]:
    """Commas between terms, not those inside a set's parentheses."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise InvalidSelector(f"unbalanced ')' in {selector!r}")
        elif char == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    if depth:
        raise InvalidSelector(f"unbalanced '(' in {selector!r}")
    terms.append(selector[start:])
    return terms


def _value(text: str, selector: str) -> str:
    text = text.strip()
    if len(text) > 63 or not re.fullmatch(_VALUE, text):
        raise InvalidSelector(f"invalid label value {text!r} in {selector!r}")
    return text


def _term(term: str, selector: str) -> Callable[[Labels], bool]:
    match = _SET.match(term)
    if match:
        key = match["key"]
        values = frozenset(_value(v, selector) for v in match["values"].split(","))
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _EXISTS.match(term)
    if match:
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    match = _COMPARE.match(term)
    if match:
        key, op = match["key"], match["op"]
        if op in (">", "<"):
            try:
                bound = int(match["value"])
            except ValueError:
                raise InvalidSelector(f"{term!r}: {op} needs an integer") from None
            return lambda labels: _compare(labels.get(key), op, bound)
        value = _value(match["value"], selector)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    raise InvalidSelector(f"unable to parse requirement {term.strip()!r} in {selector!r}")


def _compare(raw: str | None, op: str, bound: int) -> bool:
    try:
        number = int(raw) if raw is not None else None
    except ValueError:
        return False
    return number is not None and (number > bound if op == ">" else number < bound)


def parse(selector: str | None) -> Callable[[Labels], bool]:
    """A predicate on an object's labels; an empty or absent selector matches everything."""
    if selector is None or not selector.strip():
        return lambda labels: True
    terms = [_term(term, selector) for term in _split_terms(selector)]
    return lambda labels: all(term(labels) for term in terms)


def labels_of(obj) -> Labels:
    """metadata.labels of a stored object, {} when absent or malformed."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}
