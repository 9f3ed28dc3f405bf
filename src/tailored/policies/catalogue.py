"""Importing this module registers every policy of the package (each module of ``tailored.policies`` registers its
own with ``@POLICIES.register``)."""

import importlib
import pkgutil

import tailored.policies

for _module in pkgutil.iter_modules(tailored.policies.__path__):
    importlib.import_module(f"tailored.policies.{_module.name}")
