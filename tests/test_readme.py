"""The README's ```python snippets run as written (```py marks ones that need a launcher)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_snippets_run():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)  # noqa: S102
    assert "result" in namespace and float(namespace["result"].grad_norm) < 1e-5


def test_readme_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0" in text and "torch==2.13.0" in ci
    assert 'pip install -e ".[test]"' in text and 'pip install -q -e ".[test]"' in ci
    assert "examples/eeg_classification.py" in text
    assert (README.parent / "examples" / "eeg_classification.py").is_file()
