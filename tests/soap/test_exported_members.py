"""The public surface of xds.soap: each module's __all__ resolves and the package re-exports it."""

from __future__ import annotations

import importlib
import pkgutil

import xds.soap

PACKAGE_ONLY = {"parse_content_type", "strip_cid", "qname", "Spool", "action_not_supported"}


def test_every_public_module_declares_all_and_the_package_reexports_it() -> None:
    exported = set(xds.soap.__all__)
    assert all(hasattr(xds.soap, name) for name in exported)
    for info in pkgutil.iter_modules(xds.soap.__path__):
        module = importlib.import_module(f"xds.soap.{info.name}")
        assert module.__doc__, info.name
        names = set(module.__all__)
        assert all(hasattr(module, name) for name in names), info.name
        if info.name.startswith("_") or info.name == "ns":
            continue
        missing = names - exported - PACKAGE_ONLY
        assert not missing, f"{info.name}: {sorted(missing)} not re-exported"
