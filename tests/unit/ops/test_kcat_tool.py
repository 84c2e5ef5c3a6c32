"""deploy/tools/ensure-kcat.sh, which the foreign-client tests rely on, and its Makefile wiring."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_ensure_kcat_script_is_executable_bash() -> None:
    script = ROOT / "deploy" / "tools" / "ensure-kcat.sh"
    assert script.stat().st_mode & 0o111
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_make_test_and_integration_install_kcat() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "kcat-tools:\n\tdeploy/tools/ensure-kcat.sh" in makefile
    targets = {
        line.split(":")[0]: line
        for line in makefile.splitlines()
        if line.startswith(("test:", "integration:"))
    }
    assert all("kcat-tools" in line for line in targets.values()) and len(targets) == 2
