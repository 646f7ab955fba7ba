"""The layers hold: only the window imports Qt, and imports run one way (window, command
line, workflows, methods, evaluation, store, models). The contracts are in pyproject.toml
(`[tool.importlinter]`); `make lint` checks them too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    found = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr[-1000:]
    assert "0 broken" in found.stdout


def test_the_command_line_runs_without_qt():
    """`promptstudio list` where no Qt could load: the command line never imports it."""
    code = ("import sys; sys.modules['PySide6'] = None; "
            "from promptstudio.launch import main; sys.exit(main(['list']))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
