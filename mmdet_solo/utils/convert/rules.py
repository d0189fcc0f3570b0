"""Two-way key renaming: a rule pairs a foreign key template with one of ours.

Templates are dotted key patterns with integer placeholders ``{i}`` and an optional trailing
``{rest}`` (any suffix). A placeholder may be scaled on the foreign side:
``Rule('ins_head.kernel_tower.{t}.weight', 'bbox_head.kernel_convs.{t}.conv.weight',
scale={'t': (3, 0)})`` maps foreign index ``3*t + 0`` to our ``t``. Rules are tried in order;
the first whose template matches renames the key, in either direction.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

_PLACEHOLDER = re.compile(r'\{(\w+)\}')


class ConversionError(ValueError):
    """A state dict cannot be converted between two checkpoint formats."""


def _compile(template: str) -> Tuple['re.Pattern[str]', List[str]]:
    names: List[str] = []
    pattern, pos = '', 0
    for m in _PLACEHOLDER.finditer(template):
        pattern += re.escape(template[pos:m.start()])
        name = m.group(1)
        pattern += '(?P<rest>.+)' if name == 'rest' else f'(?P<{name}>\\d+)'
        names.append(name)
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(pattern + r'\Z'), names


@dataclass
class Rule:
    """``theirs`` <-> ``ours``; ``scale[name] = (a, b)`` means foreign = a * ours + b."""

    theirs: str
    ours: str
    scale: Dict[str, Tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._theirs_re, names_t = _compile(self.theirs)
        self._ours_re, names_o = _compile(self.ours)
        if sorted(names_t) != sorted(names_o):
            raise ValueError(f'Rule {self.theirs!r} <-> {self.ours!r}: placeholders differ')

    def to_ours(self, key: str) -> Optional[str]:
        m = self._theirs_re.match(key)
        if m is None:
            return None
        values = dict(m.groupdict())
        for name, (a, b) in self.scale.items():
            v = int(values[name]) - b
            if v < 0 or v % a:
                return None
            values[name] = str(v // a)
        return self.ours.format(**values)

    def to_theirs(self, key: str) -> Optional[str]:
        m = self._ours_re.match(key)
        if m is None:
            return None
        values = dict(m.groupdict())
        for name, (a, b) in self.scale.items():
            values[name] = str(a * int(values[name]) + b)
        return self.theirs.format(**values)


@dataclass
class Renamed:
    """The result of renaming a state dict: the new dict and the keys no rule matched."""

    state_dict: 'OrderedDict[str, object]'
    unmatched: List[str]


def rename(state_dict: Mapping[str, object], rules: Sequence[Rule], to_ours: bool,
           drop: Iterable[str] = ()) -> Renamed:
    """Rename every key with the first matching rule; keys in ``drop`` (regexes) are dropped.

    Raises:
        ConversionError: two source keys map to the same target key.
    """
    drop_re = [re.compile(p) for p in drop]
    out: 'OrderedDict[str, object]' = OrderedDict()
    source_of: Dict[str, str] = {}
    unmatched: List[str] = []
    for key, value in state_dict.items():
        if any(p.match(key) for p in drop_re):
            continue
        new = None
        for rule in rules:
            new = rule.to_ours(key) if to_ours else rule.to_theirs(key)
            if new is not None:
                break
        if new is None:
            unmatched.append(key)
            continue
        if new in out:
            raise ConversionError(f"keys '{source_of[new]}' and '{key}' both map to '{new}'")
        out[new], source_of[new] = value, key
    return Renamed(out, unmatched)

