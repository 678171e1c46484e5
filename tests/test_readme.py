"""README's two commands are what a newcomer runs; CI must run the same test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert "pip install torch==2.13.0" in demo and demo.endswith("featstore demo")
    assert "pip install torch==2.13.0" in tests and tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = _readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text()
