"""``python -m featstore`` runs the ``featstore`` command line."""

from featstore.cli.main import run

# guarded: worker processes started with "spawn" (a local dask cluster) import the
# parent's __main__ module again, and must not run the command a second time
if __name__ == "__main__":
    run()
