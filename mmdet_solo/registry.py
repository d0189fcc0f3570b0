"""A small registry: ``@BACKBONES.register_module()`` and ``build_from_cfg``.

A ``type`` may also be a dotted path (``'my_pkg.heads.MyHead'``), which is imported.
"""
from __future__ import annotations

import copy
import difflib
import importlib
import inspect
from typing import Any, Callable, Dict, FrozenSet, Iterable, Mapping, Optional


class Registry:
    """Maps a name to a class (or function) that builds something."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._modules: Dict[str, Any] = {}

    def __repr__(self) -> str:
        return f'Registry(name={self.name!r}, items={sorted(self._modules)})'

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    @property
    def module_dict(self) -> Dict[str, Any]:
        return dict(self._modules)

    def get(self, key: str) -> Optional[Any]:
        return self._modules.get(key)

    def _register(self, obj: Any, name: Optional[str], force: bool) -> None:
        if not (inspect.isclass(obj) or callable(obj)):
            raise TypeError(f'{self.name}: only classes or functions can be registered, got {obj!r}')
        key = name or obj.__name__
        if key in self._modules and not force and self._modules[key] is not obj:
            raise KeyError(f"'{key}' is already registered in the {self.name} registry "
                           f'(by {self._modules[key].__module__}); pass force=True to replace it')
        self._modules[key] = obj

    def register_module(self, name: Optional[str] = None, force: bool = False,
                        module: Any = None) -> Callable:
        """Register a class, as a decorator (``@R.register_module()``) or a call (``module=``)."""
        if module is not None:
            self._register(module, name, force)
            return module
        if callable(name):  # used as a bare decorator: @R.register_module
            self._register(name, None, force)
            return name

        def _decorator(obj):
            self._register(obj, name, force)
            return obj
        return _decorator

    def resolve(self, type_name: str) -> Any:
        """Return the registered object for ``type_name`` or import a dotted path."""
        if type_name in self._modules:
            return self._modules[type_name]
        if '.' in type_name:
            mod_name, _, attr = type_name.rpartition('.')
            try:
                return getattr(importlib.import_module(mod_name), attr)
            except (ImportError, AttributeError) as e:
                raise KeyError(f"{self.name} registry: cannot import type '{type_name}': {e}") from e
        close = difflib.get_close_matches(type_name, list(self._modules), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ''
        raise KeyError(f"'{type_name}' is not in the {self.name} registry{hint} "
                       f"(registered: {', '.join(sorted(self._modules)) or 'none'})")

    def build(self, cfg: dict, default_args: Optional[dict] = None) -> Any:
        return build_from_cfg(cfg, self, default_args)


def accepted_args(obj: Any) -> Optional[FrozenSet[str]]:
    """The keyword arguments a class (its ``__init__``, following ``**kwargs`` up to the base
    class that receives them) or a function accepts; ``None`` when anything is accepted."""
    import torch.nn as nn
    funcs = ([vars(c)['__init__'] for c in obj.__mro__ if '__init__' in vars(c)]
             if inspect.isclass(obj) else [obj])
    names: set = set()
    for func in funcs:
        if func in (object.__init__, nn.Module.__init__):
            break  # they take no keyword arguments from a config
        if not inspect.isfunction(func):
            return None  # a builtin (e.g. dict) whose signature says nothing
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    else:
        return None
    return frozenset(names - {'self'})


def did_you_mean(key: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'a', 'b'?)`` with the up to 3 close matches of ``key``, or ``''``."""
    close = difflib.get_close_matches(str(key), sorted(set(choices)), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ''


def check_keys(cfg: Mapping[str, Any], allowed: Optional[Iterable[str]], where: str) -> None:
    """Refuse a key of ``cfg`` that is not in ``allowed`` (``None``: anything goes), naming it,
    ``where`` it is and the close matches: a typo must never fall back to a default silently."""
    from .config import ConfigError
    if allowed is None:
        return
    allowed = sorted(set(allowed))
    for key in cfg:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}; "
                              f"it takes {', '.join(allowed) or 'no keys'}")


def build_from_cfg(cfg: dict, registry: Registry, default_args: Optional[dict] = None) -> Any:
    """Build ``registry[cfg['type']](**rest_of_cfg, **default_args)``."""
    if not isinstance(cfg, dict):
        raise TypeError(f'{registry.name}: a config must be a dict, got {type(cfg).__name__}: {cfg!r}')
    if 'type' not in cfg:
        if not default_args or 'type' not in default_args:
            raise KeyError(f"{registry.name}: the config has no 'type' key: {cfg!r}")
    args = copy.deepcopy(dict(cfg))
    if default_args:
        for k, v in default_args.items():
            args.setdefault(k, v)
    obj_type = args.pop('type')
    obj_cls = registry.resolve(obj_type) if isinstance(obj_type, str) else obj_type
    check_keys(args, accepted_args(obj_cls),
               f'{registry.name} {getattr(obj_cls, "__name__", obj_cls)}')
    try:
        return obj_cls(**args)
    except TypeError as e:
        raise TypeError(f'{registry.name}: building {getattr(obj_cls, "__name__", obj_cls)} '
                        f'failed: {e}') from e


MODELS = Registry('model')          # detectors
BACKBONES = Registry('backbone')
NECKS = Registry('neck')
HEADS = Registry('head')
LOSSES = Registry('loss')
DATASETS = Registry('dataset')
PIPELINES = Registry('pipeline')
HOOKS = Registry('hook')            # custom_hooks of a config (EMAHook, ...)
