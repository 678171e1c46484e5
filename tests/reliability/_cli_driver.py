"""featstore's command line, imported ahead: ``ready`` on stdout, then a line on stdin runs it.

The crash tests start this, wait for ``ready`` and then time their SIGKILL from the
``go`` line, so the kills land in the command's work, not in Python's start-up.

Usage: ``python -m tests.reliability._cli_driver featstore|evaluate ARGS...``
"""

from __future__ import annotations

import sys


def main() -> None:
    program, args = sys.argv[1], sys.argv[2:]
    if program == "featstore":
        if "--ctx" in args or any("/" in a for a in args[:3]):  # a model loaded by transformers
            import transformers  # noqa: F401 - what extraction imports lazily, loaded now
            from transformers import AutoModel, AutoTokenizer  # noqa: F401
        import featstore.extract.text
        import featstore.extract.window_run
        from featstore.cli.main import app
    else:
        import featstore.evaluate.runs.grid  # noqa: F401
        from featstore.cli.evaluate_main import app
    print("ready", flush=True)
    sys.stdin.readline()
    app(args, prog_name=program)


if __name__ == "__main__":
    main()
