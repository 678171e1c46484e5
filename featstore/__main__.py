"""``python -m featstore`` runs the ``featstore`` command line."""

from featstore.cli.main import run

run()
