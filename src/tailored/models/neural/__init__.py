"""Neural scorers (PyTorch, the `torch` extra).

Every module of this package is imported here so that its scorer registers; the modules import torch only when a
model is fitted or used, so the catalogue lists them even where torch is absent, and fitting one there says how to
install it.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
