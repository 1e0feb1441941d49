"""Concept layers by name: ``model.concept.kind`` in a config picks one of them.

A layer module registers its class with ``@register("name")``; the built-in modules are listed in
``BUILT_IN`` and imported on the first look-up, so that a config can name them without the caller
importing anything. A layer defined elsewhere (a plug-in, a test) registers itself the same way.
"""

from __future__ import annotations

import importlib

from neurosym.errors import ConfigError

BUILT_IN = ("neurosym.concepts.gumbel", "neurosym.concepts.vq", "neurosym.concepts.continuous")

_LAYERS: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a ``ConceptLayer`` subclass available as ``kind = name``."""
    def add(cls: type) -> type:
        if _LAYERS.get(name, cls) is not cls:
            raise ConfigError(f"concept layer kind {name!r} is already registered ({_LAYERS[name].__name__})")
        _LAYERS[name] = cls
        return cls
    return add


def unregister(name: str) -> None:
    """Remove ``kind = name`` (a layer registered for a while, e.g. by a test)."""
    _LAYERS.pop(name, None)


def layer_class(name: str) -> type:
    """The class registered as ``name``; an unknown name is a ConfigError listing the known ones."""
    for module in BUILT_IN:
        importlib.import_module(module)
    if name not in _LAYERS:
        raise ConfigError(f"concept.kind = {name!r} is not a registered concept layer (known: {', '.join(sorted(_LAYERS))})")
    return _LAYERS[name]


def build_concept_layer(config, dim: int):
    """The concept layer ``config`` (a ``ConceptConfig``) names, over slot states ``[B, S, dim]``."""
    return layer_class(config.kind).from_config(config, dim)
