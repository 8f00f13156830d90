"""The `kubernetes` package imported the way its own `kubernetes.client` is: lazily.

Importing any piece of the official client (`kubernetes.client.rest`, say) first runs
`kubernetes/__init__.py`, which imports every subpackage at once: `dynamic` (and through
it jsonschema, when kubernetes-validate is installed), `stream` (websocket-client),
`informer`, `leaderelection` and `utils`. The sync uses the client's configuration, its
REST client and its watch line reader; the rest cost the sync's process ~4 MiB of its
~60 MiB, ~40 bytes per Container at 100,000 Containers, for code it never runs.

`install()` puts in `sys.modules` a module for the package, with the package's own path,
before anything imports it. Its subpackages import from there as they always do; one
that was not imported is imported when first read as an attribute (PEP 562's module
`__getattr__`, which `kubernetes.client` itself uses for its APIs and models), so
`kubernetes.dynamic` still works. Anything else the package's `__init__` defines
(`__version__`) runs that `__init__` once, as it would have run at import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

PACKAGE = "kubernetes"
# What kubernetes/__init__.py imports (37.x): read as attributes, each is imported alone.
SUBPACKAGES = frozenset({"client", "config", "dynamic", "watch", "stream", "utils", "leaderelection", "informer"})


def install() -> bool:
    """Make later imports of the kubernetes package lazy; False (and nothing done) when it
    is imported already or not installed."""
    if PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    package = importlib.util.module_from_spec(spec)
    loaded = []  # the package's own __init__ has run

    def __getattr__(name: str):
        if name in SUBPACKAGES:
            return importlib.import_module(f"{PACKAGE}.{name}")
        if not loaded:
            loaded.append(True)
            spec.loader.exec_module(package)  # imports every subpackage, defines the rest
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    package.__getattr__ = __getattr__
    sys.modules[PACKAGE] = package
    return True
