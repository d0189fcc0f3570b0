"""Python config files with ``_base_`` inheritance, in the style of mmcv (our own code).

A config file is a Python (or JSON) file whose module-level names form a dict::

    _base_ = ['../_base_/models/solov2_r50_fpn.py', '../_base_/default_runtime.py']
    model = dict(backbone=dict(depth=101))

Bases are loaded first and the child is merged into them: dicts merge key by key,
everything else (lists, tuples, scalars) is replaced. A child dict with
``_delete_=True`` replaces the base dict instead of merging into it.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import keyword
import math
import os
import os.path as osp
import tempfile
import types
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

BASE_KEY = '_base_'
DELETE_KEY = '_delete_'
RESERVED_KEYS = ('filename', 'text', 'pretty_text', 'unread_names')
SUPPORTED_EXTS = ('.py', '.json')
_LINE_WIDTH = 88


class ConfigError(ValueError):
    """A config file that cannot be read, parsed or merged."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file (or one of its ``_base_`` files) does not exist."""


# ----------------------------------------------------------------------------- ConfigDict
def _to_config(value: Any) -> Any:
    """Convert dicts (also inside lists and tuples) to ``ConfigDict``."""
    if isinstance(value, ConfigDict):
        return value
    if isinstance(value, dict):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_to_config(v) for v in value]
    if type(value) is tuple:
        return tuple(_to_config(v) for v in value)
    return value


def _to_plain(value: Any) -> Any:
    """Convert ``ConfigDict`` (also inside lists and tuples) back to ``dict``."""
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if type(value) is tuple:
        return tuple(_to_plain(v) for v in value)
    return value


class ConfigDict(dict):
    """A dict whose keys can also be read and written as attributes.

    Nested dicts (also those inside lists and tuples) become ``ConfigDict`` too.
    A missing attribute raises ``AttributeError`` naming the key.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _to_config(value))

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__'):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            keys = ', '.join(repr(k) for k in self) or 'none'
            raise AttributeError(f"config has no key '{name}' (keys here: {keys})") from None

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
        return ConfigDict(self)

    def __copy__(self) -> 'ConfigDict':
        return ConfigDict(self)

    def __deepcopy__(self, memo: dict) -> 'ConfigDict':
        out = ConfigDict()
        memo[id(self)] = out
        for k, v in self.items():
            out[copy.deepcopy(k, memo)] = copy.deepcopy(v, memo)
        return out

    def __reduce__(self):
        return (ConfigDict, (dict(self),))

    def to_dict(self) -> dict:
        """A plain-``dict`` copy (nested ``ConfigDict`` converted)."""
        return _to_plain(self)


# ----------------------------------------------------------------------------- merging
def _strip_delete(value: Any) -> Any:
    """Return ``value`` with every ``_delete_`` key removed (copies, never mutates)."""
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete(v) for v in value]
    if type(value) is tuple:
        return tuple(_strip_delete(v) for v in value)
    return value


def merge_dicts(child: Mapping, base: Mapping, *, key_path: str = '',
                child_name: str = '<child>', base_name: str = '<base>') -> dict:
    """Merge ``child`` into a copy of ``base``: dicts merge, everything else is replaced.

    A dict in ``child`` with ``_delete_=True`` replaces the base value instead of merging.
    A child dict over a base value that is neither a dict nor ``None`` is an error, since
    the base's content would be lost silently (use ``_delete_=True`` to replace it).
    """
    out = dict(base)
    for k, v in child.items():
        path = f'{key_path}.{k}' if key_path else str(k)
        if isinstance(v, dict) and k in out and not v.get(DELETE_KEY, False):
            old = out[k]
            if isinstance(old, dict):
                out[k] = merge_dicts(v, old, key_path=path, child_name=child_name,
                                     base_name=base_name)
                continue
            if old is not None:
                raise ConfigError(
                    f"cannot merge key '{path}': {child_name} gives a dict but {base_name} "
                    f'gives a {type(old).__name__} ({old!r}); add {DELETE_KEY}=True to the '
                    f'dict in {child_name} to replace the base value')
        out[k] = _strip_delete(v)
    return out


# ----------------------------------------------------------------------------- loading
def _error_line(exc: BaseException, filename: str) -> Optional[int]:
    """The last line of ``filename`` in the traceback of ``exc``."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _exec_python(text: str, filename: str) -> Dict[str, Any]:
    """Execute config source and return its public module-level names."""
    try:
        code = compile(text, filename, 'exec')
    except SyntaxError as e:
        src = (e.text or '').rstrip('\n')
        where = f'{filename}, line {e.lineno}' + (f', column {e.offset}' if e.offset else '')
        raise ConfigError(f'syntax error in config {where}: {e.msg}'
                          + (f'\n    {src.strip()}' if src else '')) from None
    namespace: Dict[str, Any] = {'__file__': filename, '__name__': '__mmdet_solo_config__'}
    try:
        exec(code, namespace)
    except Exception as e:
        line = _error_line(e, filename)
        where = f'{filename}, line {line}' if line else filename
        raise ConfigError(f'error while executing config {where}: '
                          f'{type(e).__name__}: {e}') from e
    skip = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    return {k: v for k, v in namespace.items()
            if not k.startswith('__') and not isinstance(v, skip)}


def _names_read(text: str) -> Set[str]:
    """Every name the Python source ``text`` reads (``x`` in ``dict(**x)``, ``x + 'a'``...)."""
    return {node.id for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def _parse_text(text: str, filename: str, ext: str) -> Dict[str, Any]:
    if ext == '.py':
        return _exec_python(text, filename)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f'invalid JSON in config {filename}, line {e.lineno}: {e.msg}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'config {filename} must hold a JSON object, got {type(data).__name__}')
    return data


def _check_ext(path: str, referenced_by: Optional[str] = None) -> str:
    ext = osp.splitext(path)[1].lower()
    if ext not in SUPPORTED_EXTS:
        by = f' (referenced as _base_ by {referenced_by})' if referenced_by else ''
        raise ConfigError(f"unsupported config file type '{ext or '(none)'}' for {path}{by}; "
                          f"expected one of {', '.join(SUPPORTED_EXTS)}")
    return ext


def _base_paths(raw: Any, filename: str, base_dir: str) -> List[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, str) for p in items):
        raise ConfigError(f'{BASE_KEY} in {filename} must be a path or a list of paths, '
                          f'got {raw!r}')
    return [osp.normpath(osp.join(base_dir, osp.expanduser(p))) for p in items]


Loaded = Tuple[Dict[str, Any], List[str], List[Tuple[str, str]]]


def _load_text(text: str, filename: str, ext: str, base_dir: str,
               chain: Tuple[str, ...]) -> Loaded:
    """Parse ``text``, resolve its bases, and return (merged dict, texts in load order,
    (name, file) of every top-level name a file sets without reading it itself)."""
    own = _parse_text(text, filename, ext)
    raw_bases = own.pop(BASE_KEY, None)
    read = _names_read(text) if ext == '.py' else set()
    unread = [(k, filename) for k in own if k not in read]
    texts: List[str] = []
    merged: Dict[str, Any] = {}
    key_owner: Dict[str, str] = {}
    if raw_bases is not None:
        for path in _base_paths(raw_bases, filename, base_dir):
            _check_ext(path, referenced_by=filename)
            if path in chain:
                cycle = ' -> '.join(list(chain[chain.index(path):]) + [path])
                raise ConfigError(f'{BASE_KEY} cycle: {cycle}')
            if not osp.isfile(path):
                raise ConfigNotFoundError(
                    f'{filename} references {BASE_KEY} {path!r}, which does not exist')
            base_dict, base_texts, base_unread = _load_file(path, chain + (path,))
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
    result = dict(merged)
    for k, v in own.items():
        base_part = {k: merged[k]} if k in merged else {}
        result.update(merge_dicts({k: v}, base_part, child_name=filename,
                                  base_name=key_owner.get(k, 'its base')))
    texts.append(f'# {filename}\n{text}')
    return _strip_delete(result), texts, unread


def _load_file(path: str, chain: Tuple[str, ...]) -> Loaded:
    ext = _check_ext(path)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return _load_text(text, path, ext, osp.dirname(path), chain)


# ----------------------------------------------------------------------------- pretty text
def _is_identifier_key(k: Any) -> bool:
    return isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k)


def _format_scalar(v: Any, path: str) -> str:
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return f"float('{v}')"
        return repr(v)
    if isinstance(v, range):
        return repr(v)
    raise ConfigError(f"cannot write config value at '{path}': objects of type "
                      f'{type(v).__name__} have no Python-literal form ({v!r})')


def _format(v: Any, indent: int, path: str, use_dict_call: bool, lead: int = 0) -> str:
    """Python source for ``v``: one line when it fits, else one item per line.

    ``indent`` is the indentation of the line the value starts on and ``lead`` the number
    of characters before the value on that line (after the indentation).
    """
    inner = indent + 4
    if isinstance(v, dict):
        if use_dict_call and all(_is_identifier_key(k) for k in v):
            items = [f'{k}=' + _format(x, inner, f'{path}.{k}', use_dict_call, len(k) + 1)
                     for k, x in v.items()]
            open_, close = 'dict(', ')'
        else:
            items = []
            for k, x in v.items():
                key = _format(k, inner, path, use_dict_call) + ': '
                items.append(key + _format(x, inner, f'{path}.{k}', use_dict_call, len(key)))
            open_, close = '{', '}'
    elif type(v) in (list, tuple):
        items = [_format(x, inner, f'{path}.{i}', use_dict_call) for i, x in enumerate(v)]
        open_, close = ('[', ']') if isinstance(v, list) else ('(', ')')
    else:
        return _format_scalar(v, path)
    single_tuple = type(v) is tuple and len(items) == 1
    one_line = open_ + ', '.join(items) + (',' if single_tuple else '') + close
    # +1 leaves room for the comma that follows an item inside a container
    if not items or ('\n' not in one_line and indent + lead + len(one_line) + 1 <= _LINE_WIDTH):
        return one_line
    pad = ' ' * inner
    body = ''.join(f'{pad}{item},\n' for item in items)
    return f'{open_}\n{body}{" " * indent}{close}'


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


def _atomic_write(path: str, text: str) -> None:
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix=osp.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


# ----------------------------------------------------------------------------- Config
class Config:
    """A loaded config: a ``ConfigDict`` plus the file it came from.

    Supports attribute and item access (``cfg.model.bbox_head``, ``cfg['model']``),
    ``get``, ``in``, iteration over top-level keys, ``copy.deepcopy`` and pickling.
    """

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
        object.__setattr__(self, '_cfg_dict', ConfigDict(cfg_dict))
        object.__setattr__(self, '_filename', filename)
        object.__setattr__(self, '_text', text)
        object.__setattr__(self, '_unread_names',
                           None if unread_names is None else tuple(map(tuple, unread_names)))

    # ---- construction
    @staticmethod
    def fromfile(filename: str) -> 'Config':
        """Load a ``.py`` or ``.json`` config file, resolving ``_base_`` recursively."""
        path = osp.abspath(osp.expanduser(str(filename)))
        _check_ext(path)
        if not osp.isfile(path):
            raise ConfigNotFoundError(f'config file not found: {filename}')
        cfg, texts, unread = _load_file(path, (path,))
        return Config(cfg, filename=path, text='\n'.join(texts), unread_names=unread)

    @staticmethod
    def fromstring(text: str, file_format: str = '.py', base_dir: Optional[str] = None
                   ) -> 'Config':
        """Load config source text; a relative ``_base_`` is resolved against ``base_dir``
        (default: the current directory)."""
        ext = file_format if file_format.startswith('.') else f'.{file_format}'
        _check_ext(f'string{ext}')
        name = f'<string{ext}>'
        cfg, texts, unread = _load_text(text, name, ext.lower(),
                                        osp.abspath(base_dir or os.getcwd()), (name,))
        return Config(cfg, filename=None, text='\n'.join(texts), unread_names=unread)

    # ---- properties
    @property
    def filename(self) -> Optional[str]:
        return self._filename

    @property
    def text(self) -> str:
        """Source of the file and all its bases (bases first), each under a path comment."""
        return self._text

    @property
    def unread_names(self) -> Optional[Tuple[Tuple[str, str], ...]]:
        """(name, file) of each top-level name a config file sets without reading it itself
        (``None`` for a config not loaded from text); see ``apis.config_check``."""
        return self._unread_names

    @property
    def pretty_text(self) -> str:
        """Python source that reproduces this config (stable formatting)."""
        return pretty_text(self._cfg_dict)

    # ---- mapping protocol
    def __getattr__(self, name: str) -> Any:
        if name.startswith('_'):
            try:
                return self.__dict__[name]
            except KeyError:
                pass
        try:
            return self.__dict__['_cfg_dict'][name]
        except KeyError:
            where = self.__dict__.get('_filename') or '(not from a file)'
            raise AttributeError(f"config {where} has no key '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in RESERVED_KEYS:
            raise AttributeError(f"'{name}' is read-only on Config")
        self._cfg_dict[name] = value

    def __delattr__(self, name: str) -> None:
        delattr(self._cfg_dict, name)

    def __getitem__(self, key: str) -> Any:
        return self._cfg_dict[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._cfg_dict[key] = value

    def __delitem__(self, key: str) -> None:
        del self._cfg_dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._cfg_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfg_dict)

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._cfg_dict == other._cfg_dict
        if isinstance(other, Mapping):
            return self._cfg_dict == other
        return NotImplemented

    def __repr__(self) -> str:
        return f'Config (path: {self.filename}): {self._cfg_dict!r}'

    def get(self, key: str, default: Any = None) -> Any:
        return self._cfg_dict.get(key, default)

    def keys(self):
        return self._cfg_dict.keys()

    def values(self):
        return self._cfg_dict.values()

    def items(self):
        return self._cfg_dict.items()

    def to_dict(self) -> dict:
        """A plain nested ``dict`` copy of the config."""
        return self._cfg_dict.to_dict()

    # ---- copying and pickling
    def __copy__(self) -> 'Config':
        return Config(self._cfg_dict, self._filename, self._text, self._unread_names)

    def __deepcopy__(self, memo: dict) -> 'Config':
        return Config(copy.deepcopy(self._cfg_dict, memo), self._filename, self._text,
                      self._unread_names)

    def __getstate__(self) -> dict:
        return {'cfg_dict': self._cfg_dict.to_dict(), 'filename': self._filename,
                'text': self._text, 'unread_names': self._unread_names}

    def __setstate__(self, state: dict) -> None:
        Config.__init__(self, state['cfg_dict'], state['filename'], state['text'],
                        state.get('unread_names'))

    # ---- editing
    def merge_from_dict(self, options: Mapping[str, Any]) -> None:
        """Apply ``{'a.b.0.c': value}`` overrides.

        Integer path components index into lists; missing intermediate dicts are created.
        A dict value merges into an existing dict (``_delete_=True`` replaces it).
        """
        for dotted, value in options.items():
            if not isinstance(dotted, str) or not dotted:
                raise ConfigError(f'override keys must be non-empty dotted strings, got {dotted!r}')
            parts = dotted.split('.')
            node: Any = self._cfg_dict
            for i, part in enumerate(parts[:-1]):
                node = _step(node, part, '.'.join(parts[:i + 1]), dotted, create=True)
            last = parts[-1]
            if isinstance(node, list):
                idx = _list_index(node, last, '.'.join(parts[:-1]), dotted)
                node[idx] = _merge_value(node[idx], value, dotted)
            else:
                node[last] = _merge_value(node.get(last), value, dotted)

    def dump(self, file: Optional[str] = None) -> Optional[str]:
        """Write the resolved config to ``file`` (``.py``, or ``.json`` where tuples become
        lists), atomically; without ``file`` return the Python text."""
        if file is None:
            return self.pretty_text
        ext = osp.splitext(str(file))[1].lower()
        if ext == '.py':
            text = self.pretty_text
        elif ext == '.json':
            text = json.dumps(self.to_dict(), indent=2) + '\n'
        else:
            raise ConfigError(f"cannot dump config to {file}: unsupported extension "
                              f"'{ext or '(none)'}', expected .py or .json")
        _atomic_write(str(file), text)
        return None


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


def _step(node: Any, part: str, prefix: str, dotted: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, prefix, dotted)]
    if not isinstance(node, dict):
        raise ConfigError(f"override '{dotted}': cannot descend into '{prefix}', which holds a "
                          f'{type(node).__name__}, not a dict or list')
    if part not in node or node[part] is None:
        if not create:
            raise ConfigError(f"override '{dotted}': no key '{prefix}'")
        node[part] = ConfigDict()
    child = node[part]
    if not isinstance(child, (dict, list)):
        raise ConfigError(f"override '{dotted}': '{prefix}' holds a {type(child).__name__} "
                          f'({child!r}), not a dict or list')
    return child


def _merge_value(old: Any, new: Any, dotted: str) -> Any:
    if isinstance(new, dict) and isinstance(old, dict) and not new.get(DELETE_KEY, False):
        return merge_dicts(new, old, key_path=dotted, child_name='the override',
                           base_name='the config')
    return _strip_delete(new)


# ----------------------------------------------------------------------------- command line
def _split_top_level(text: str) -> List[str]:
    """Split on commas that are outside brackets and quotes."""
    parts, depth, quote, start = [], 0, '', 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ''
        elif ch in '\'"':
            quote = ch
        elif ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
            if depth < 0:
                raise ValueError(f'unbalanced brackets in {text!r}')
        elif ch == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quote:
        raise ValueError(f'unbalanced brackets or quotes in {text!r}')
    parts.append(text[start:])
    return parts


def parse_value(text: str) -> Any:
    """Parse one ``--cfg-options`` value.

    ``1`` → int, ``1.5``/``1e-3`` → float, ``True``/``true``/``False``/``false`` → bool,
    ``None`` → None, ``(1,2)`` → tuple, ``[1,[2,3]]`` → list (nested allowed),
    ``a,b`` → list, ``'x'``/``"x"`` → str, anything else → the bare string.
    """
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in '\'"':
        return s[1:-1]
    if len(s) >= 2 and (s[0], s[-1]) in (('(', ')'), ('[', ']')):
        inner = s[1:-1].strip()
        items = [] if not inner else _split_top_level(inner)
        if items and not items[-1].strip():  # trailing comma: (1,)
            items = items[:-1]
        values = [parse_value(x) for x in items]
        return values if s[0] == '[' else tuple(values)
    if ',' in s and len(_split_top_level(s)) > 1:
        return [parse_value(x) for x in _split_top_level(s)]
    if s in ('True', 'true'):
        return True
    if s in ('False', 'false'):
        return False
    if s == 'None':
        return None
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


class DictAction(argparse.Action):
    """argparse action for ``--cfg-options key=value [key=value ...]``.

    Collects a ``{dotted_key: parsed_value}`` dict (see :func:`parse_value`), ready for
    ``Config.merge_from_dict``. Repeating the option adds to the same dict.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = '+',
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        current = getattr(namespace, self.dest, None)
        options = dict(current) if isinstance(current, dict) else {}
        for item in ([values] if isinstance(values, str) else values):
            key, sep, raw = item.partition('=')
            if not sep or not key:
                parser.error(f"{option_string or self.dest}: expected key=value, got '{item}'")
            try:
                options[key] = parse_value(raw)
            except ValueError as e:
                parser.error(f"{option_string or self.dest}: cannot parse the value of "
                             f"'{key}': {e}")
        setattr(namespace, self.dest, options)


__all__ = ['Config', 'ConfigDict', 'ConfigError', 'ConfigNotFoundError', 'DictAction',
           'merge_dicts', 'parse_value', 'pretty_text']
