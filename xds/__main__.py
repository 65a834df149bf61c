"""``python -m xds``: the same CLI as the ``xds`` command."""

from xds.cli import main

main()
