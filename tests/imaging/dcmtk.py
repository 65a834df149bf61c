"""dcmtk's command-line tools (Debian package ``dcmtk``) for the tests and benchmarks.

pynetdicom installs Python apps of the same names (``storescu`` ...) into the virtualenv, whose
``bin`` comes first on PATH there; dcmtk's are looked up outside it.
"""

from __future__ import annotations

import os
import shutil
import sys

__all__ = ["dcmtk"]


def dcmtk(tool: str) -> str:
    """The path of dcmtk's ``tool``; RuntimeError when dcmtk is not installed."""
    venv_bin = os.path.join(sys.prefix, "bin")
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and os.path.abspath(d) != os.path.abspath(venv_bin)]
    found = shutil.which(tool, path=os.pathsep.join([*dirs, "/usr/bin", "/usr/local/bin"]))
    if found is None:
        raise RuntimeError(f"dcmtk's {tool} is needed: apt install dcmtk (.ci/run does)")
    return found
