"""Python config files with ``_base_`` inheritance, in the style of mmcv (our own code).

A config file is a Python file whose module-level names form a dict. Its ``_base_`` files
(a path or a list) are loaded first and it is merged into them: dicts merge key by key,
everything else is replaced, and a dict with ``_delete_=True`` replaces the base dict."""
from __future__ import annotations

import argparse
import ast
import copy
import keyword
import math
import os.path as osp
import traceback
import types
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from .utils.io import atomic_write

BASE_KEY = '_base_'
DELETE_KEY = '_delete_'
RESERVED_KEYS = ('filename', 'text', 'pretty_text', 'unread_names')
_LINE_WIDTH = 88
_WORDS = {'True': True, 'true': True, 'False': False, 'false': False, 'None': None}


class ConfigError(ValueError):
    """A config file that cannot be read, parsed or merged."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file (or one of its ``_base_`` files) does not exist."""


def _map_dicts(value: Any, on_dict: Callable[[dict], Any]) -> Any:
    """``value`` with ``on_dict`` applied to each dict in it (also inside lists and tuples)."""
    if isinstance(value, dict):
        return on_dict(value)
    if isinstance(value, list):
        return [_map_dicts(v, on_dict) for v in value]
    if type(value) is tuple:
        return tuple(_map_dicts(v, on_dict) for v in value)
    return value


def _plain(value: Any, drop: Tuple[str, ...] = ()) -> Any:
    """``value`` with its dicts (also nested) copied to plain dicts without the keys in ``drop``."""
    return _map_dicts(value, lambda d: {k: _plain(v, drop) for k, v in d.items() if k not in drop})


class ConfigDict(dict):
    """A dict whose keys are also attributes; nested dicts (also inside lists and tuples)
    become ``ConfigDict`` too. A missing attribute raises ``AttributeError`` naming the key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _map_dicts(
            value, lambda d: d if isinstance(d, ConfigDict) else ConfigDict(d)))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(self._no_key(name)) from None

    def _no_key(self, name: str) -> str:
        return f"config has no key '{name}' (keys here: {', '.join(map(repr, self)) or 'none'})"

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> 'ConfigDict':
        return copy.copy(self)

    def __reduce__(self) -> tuple:  # also what copy.copy and copy.deepcopy use
        return (ConfigDict, (dict(self),))

    def to_dict(self) -> dict:
        """A plain-``dict`` copy (nested ``ConfigDict`` converted)."""
        return _plain(self)


def merge_dicts(child: Mapping, base: Mapping, *, key_path: str = '',
                child_name: str = '<child>', base_name: str = '<base>') -> dict:
    """Merge ``child`` into a copy of ``base``: dicts merge, everything else is replaced; a
    child dict with ``_delete_=True`` replaces too. A child dict over a base value that is
    neither a dict nor ``None`` is an error (the base would be lost silently)."""
    out = dict(base)
    for k, v in child.items():
        path = f'{key_path}.{k}' if key_path else str(k)
        old = out.get(k)
        merge = isinstance(v, dict) and not v.get(DELETE_KEY, False)
        if merge and isinstance(old, dict):
            out[k] = merge_dicts(v, old, key_path=path, child_name=child_name, base_name=base_name)
        elif merge and old is not None:
            raise ConfigError(
                f"cannot merge key '{path}': {child_name} gives a dict but {base_name} "
                f'gives a {type(old).__name__} ({old!r}); add {DELETE_KEY}=True to the '
                f'dict in {child_name} to replace the base value')
        else:
            out[k] = _plain(v, (DELETE_KEY,))
    return out


def _exec_python(text: str, filename: str) -> Tuple[Dict[str, Any], Set[str]]:
    """Execute config source: (its public module-level names, the names it reads itself)."""
    try:
        tree = ast.parse(text, filename)
        code = compile(tree, filename, 'exec')
    except SyntaxError as e:
        src = (e.text or '').strip()
        where = f'{filename}, line {e.lineno}' + (f', column {e.offset}' if e.offset else '')
        raise ConfigError(f'syntax error in config {where}: {e.msg}'
                          + (f'\n    {src}' if src else '')) from None
    namespace: Dict[str, Any] = {'__file__': filename, '__name__': '__mmdet_solo_config__'}
    try:
        exec(code, namespace)
    except Exception as e:
        lines = [line for frame, line in traceback.walk_tb(e.__traceback__)
                 if frame.f_code.co_filename == filename]
        where = f'{filename}, line {lines[-1]}' if lines else filename
        raise ConfigError(f'error while executing config {where}: '
                          f'{type(e).__name__}: {e}') from e
    skip = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    read = {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return {k: v for k, v in namespace.items()
            if not k.startswith('__') and not isinstance(v, skip)}, read


def _load_file(filename: str, chain: Tuple[str, ...] = ()
               ) -> Tuple[Dict[str, Any], List[str], List[Tuple[str, str]]]:
    """Load ``filename`` (a base of the files in ``chain``, nearest last) and its bases: (merged
    dict, texts in load order, (name, file) of each top-level name a file sets but never reads)."""
    ext = osp.splitext(filename)[1].lower()
    if ext != '.py':
        by = f' (referenced as _base_ by {chain[-1]})' if chain else ''
        raise ConfigError(f"unsupported config file type '{ext or '(none)'}' for {filename}{by}; "
                          'expected a Python (.py) config file')
    if filename in chain:
        cycle = ' -> '.join(chain[chain.index(filename):] + (filename,))
        raise ConfigError(f'{BASE_KEY} cycle: {cycle}')
    if chain and not osp.isfile(filename):
        raise ConfigNotFoundError(
            f'{chain[-1]} references {BASE_KEY} {filename!r}, which does not exist')
    with open(filename, encoding='utf-8') as f:
        text = f.read()
    own, read = _exec_python(text, filename)
    bases = own.pop(BASE_KEY, None)
    bases = [] if bases is None else [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, (list, tuple)) or not all(isinstance(p, str) for p in bases):
        raise ConfigError(f'{BASE_KEY} in {filename} must be a path or a list of paths, '
                          f'got {bases!r}')
    unread = [(k, filename) for k in own if k not in read]
    texts, merged, key_owner = [], {}, {}  # key_owner: the base that sets each key
    for base in bases:
        path = osp.normpath(osp.join(osp.dirname(filename), osp.expanduser(base)))
        base_dict, base_texts, base_unread = _load_file(path, chain + (filename,))
        unread = base_unread + unread
        for k in base_dict:
            if k in key_owner:
                raise ConfigError(
                    f"duplicate key '{k}' in the bases of {filename}: defined in both "
                    f'{key_owner[k]} and {path}; bases in one {BASE_KEY} list must not '
                    'share top-level keys')
            key_owner[k] = path
        merged.update(base_dict)
        texts.extend(base_texts)
    for k, v in own.items():
        merged[k] = merge_dicts({k: v}, merged, child_name=filename,
                                base_name=key_owner.get(k, 'its base'))[k]
    return _plain(merged, (DELETE_KEY,)), texts + [f'# {filename}\n{text}'], unread


def _is_identifier_key(k: Any) -> bool:
    return isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k)


def _format(v: Any, indent: int, path: str, use_dict_call: bool, lead: int = 0) -> str:
    """Python source for ``v``: one line when it fits, else one item per line. ``indent``: that
    of the line ``v`` starts on; ``lead``: the characters before ``v`` on it (after indent)."""
    inner = indent + 4
    if isinstance(v, dict):
        call = use_dict_call and all(_is_identifier_key(k) for k in v)
        keys = [f'{k}=' if call else _format(k, inner, path, use_dict_call) + ': ' for k in v]
        items = [key + _format(x, inner, f'{path}.{k}', use_dict_call, len(key))
                 for key, (k, x) in zip(keys, v.items())]
        open_, close = ('dict(', ')') if call else ('{', '}')
    elif type(v) in (list, tuple):
        items = [_format(x, inner, f'{path}.{i}', use_dict_call) for i, x in enumerate(v)]
        open_, close = ('[', ']') if isinstance(v, list) else ('(', ')')
    elif isinstance(v, float) and not math.isfinite(v):
        return f"float('{v}')"
    elif v is None or isinstance(v, (bool, int, float, str, bytes, range)):
        return repr(v)
    else:
        raise ConfigError(f"cannot write config value at '{path}': objects of type "
                          f'{type(v).__name__} have no Python-literal form ({v!r})')
    comma = ',' if type(v) is tuple and len(items) == 1 else ''  # (x,) is a tuple, (x) is not
    one_line = f"{open_}{', '.join(items)}{comma}{close}"
    # +1 leaves room for the comma that follows an item inside a container
    if not items or ('\n' not in one_line and indent + lead + len(one_line) + 1 <= _LINE_WIDTH):
        return one_line
    body = ''.join(f"{' ' * inner}{item},\n" for item in items)
    return f"{open_}\n{body}{' ' * indent}{close}"


def pretty_text(cfg: Mapping[str, Any]) -> str:
    """Python source that recreates ``cfg`` when executed as a config file."""
    use_dict_call = 'dict' not in cfg
    lines = []
    for k, v in cfg.items():
        if not _is_identifier_key(k):
            raise ConfigError(f'cannot write top-level config key {k!r}: it is not a '
                              'Python identifier')
        lines.append(f'{k} = ' + _format(v, 0, k, use_dict_call, len(k) + 3))
    return '\n'.join(lines) + '\n'


class Config(ConfigDict):
    """A ``ConfigDict`` of a config's top-level keys with read-only attributes: ``filename``,
    ``text`` (the source of the file and its bases, bases first, each under a path comment) and
    ``unread_names`` ((name, file) of each top-level name a file sets but does not read itself;
    ``None`` for a config built from a dict; see ``apis.config_check``)."""

    def __init__(self, cfg_dict: Optional[Mapping[str, Any]] = None,
                 filename: Optional[str] = None, text: str = '',
                 unread_names: Optional[Sequence[Tuple[str, str]]] = None) -> None:
        cfg_dict = {} if cfg_dict is None else cfg_dict
        if not isinstance(cfg_dict, Mapping):
            raise TypeError(f'cfg_dict must be a dict, got {type(cfg_dict).__name__}')
        for k in RESERVED_KEYS:
            if k in cfg_dict:
                raise ConfigError(f"'{k}' is reserved by Config and cannot be a top-level "
                                  f"key (in {filename or 'the given dict'})")
        unread = None if unread_names is None else tuple(map(tuple, unread_names))
        vars(self).update(filename=filename, text=text, unread_names=unread)
        super().__init__(cfg_dict)

    @staticmethod
    def fromfile(filename: str) -> 'Config':
        """Load a ``.py`` config file, resolving ``_base_`` recursively, or an AdelaiDet
        ``.yaml`` config (translated: see :mod:`mmdet_solo.config_yaml`)."""
        path = osp.abspath(osp.expanduser(str(filename)))
        if not osp.isfile(path):
            raise ConfigNotFoundError(f'config file not found: {filename}')
        if osp.splitext(path)[1].lower() in ('.yaml', '.yml'):
            from .config_yaml import load_yaml_config
            return load_yaml_config(path)
        cfg, texts, unread = _load_file(path)
        return Config(cfg, filename=path, text='\n'.join(texts), unread_names=unread)

    @property
    def pretty_text(self) -> str:
        """Python source that reproduces this config (stable formatting)."""
        return pretty_text(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in RESERVED_KEYS:
            raise AttributeError(f"'{name}' is read-only on Config")
        self[name] = value

    def _no_key(self, name: str) -> str:
        return f"config {vars(self).get('filename') or '(not from a file)'} has no key '{name}'"

    def __reduce__(self) -> tuple:
        return (Config, (dict(self), self.filename, self.text, self.unread_names))

    def __repr__(self) -> str:
        return f'Config (path: {self.filename}): {super().__repr__()}'

    def merge_from_dict(self, options: Mapping[str, Any]) -> None:
        """Apply ``{'a.b.0.c': value}`` overrides: integers index into lists, missing dicts on
        the way are created, a dict value merges into a dict (``_delete_=True`` replaces it)."""
        for dotted, value in options.items():
            if not isinstance(dotted, str) or not dotted:
                raise ConfigError('override keys must be non-empty dotted strings, '
                                  f'got {dotted!r}')
            parts = dotted.split('.')
            node: Any = self
            for i, part in enumerate(parts):
                prefix = '.'.join(parts[:i])
                if not isinstance(node, (dict, list)):
                    raise ConfigError(f"override '{dotted}': '{prefix}' holds a "
                                      f'{type(node).__name__} ({node!r}), not a dict or list')
                key = _list_index(node, part, prefix, dotted) if isinstance(node, list) else part
                if i < len(parts) - 1:
                    if isinstance(node, dict) and node.get(key) is None:
                        node[key] = ConfigDict()
                    node = node[key]
            old = node[key] if isinstance(node, list) else node.get(key)
            node[key] = merge_dicts({key: value}, {key: old} if isinstance(old, dict) else {},
                                    key_path=prefix, child_name='the override',
                                    base_name='the config')[key]

    def dump(self, file: str) -> None:
        """Write :attr:`pretty_text` to the ``.py`` file ``file`` atomically."""
        ext = osp.splitext(str(file))[1].lower()
        if ext != '.py':
            raise ConfigError(f"cannot dump config to {file}: unsupported extension "
                              f"'{ext or '(none)'}', expected .py")
        atomic_write(str(file), self.pretty_text)


def _list_index(node: list, part: str, prefix: str, dotted: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ConfigError(f"override '{dotted}': '{prefix}' is a list, so '{part}' must be an "
                          'integer index') from None
    if not -len(node) <= idx < len(node):
        raise ConfigError(f"override '{dotted}': index {idx} is out of range for the list at "
                          f"'{prefix}' (length {len(node)})")
    return idx


def _split_top_level(text: str) -> List[str]:
    """Split on commas that are outside brackets and quotes."""
    parts, depth, quote, start = [], 0, '', 0
    for i, ch in enumerate(text):
        if quote:
            quote = '' if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '([)]':
            depth += 1 if ch in '([' else -1
            if depth < 0:
                raise ValueError(f'unbalanced brackets in {text!r}')
        elif ch == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quote:
        raise ValueError(f'unbalanced brackets or quotes in {text!r}')
    return parts + [text[start:]]


def parse_value(text: str) -> Any:
    """Parse one ``--cfg-options`` value: ``1`` → int, ``1.5``/``1e-3`` → float,
    ``True``/``true``/``False``/``false`` → bool, ``None`` → None, ``(1,2)`` → tuple,
    ``[1,[2,3]]`` → list (nested allowed), ``a,b`` → list, ``'x'``/``"x"`` → str, anything
    else → the bare string."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in '\'"':
        return s[1:-1]
    bracketed = len(s) >= 2 and s[0] + s[-1] in ('()', '[]')
    parts = _split_top_level(s[1:-1] if bracketed else s) if bracketed or ',' in s else [s]
    if bracketed or len(parts) > 1:
        if bracketed and not parts[-1].strip():  # nothing, or a trailing comma: (1,)
            parts.pop()
        values = [parse_value(x) for x in parts]
        return tuple(values) if bracketed and s[0] == '(' else values
    if s in _WORDS:
        return _WORDS[s]
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


class DictAction(argparse.Action):
    """argparse action for ``--cfg-options key=value [key=value ...]``: a ``{dotted_key:
    parse_value(value)}`` dict for ``Config.merge_from_dict`` (repeats add to it)."""

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = '+',
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        options = dict(getattr(namespace, self.dest, None) or {})
        name = option_string or self.dest
        for item in ([values] if isinstance(values, str) else values):
            key, sep, raw = item.partition('=')
            if not sep or not key:
                parser.error(f"{name}: expected key=value, got '{item}'")
            try:
                options[key] = parse_value(raw)
            except ValueError as e:
                parser.error(f"{name}: cannot parse the value of '{key}': {e}")
        setattr(namespace, self.dest, options)


__all__ = ['Config', 'ConfigDict', 'ConfigError', 'ConfigNotFoundError', 'DictAction',
           'merge_dicts', 'parse_value', 'pretty_text']
