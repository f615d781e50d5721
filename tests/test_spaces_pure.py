"""``nao.spaces`` is the pure grammar layer: importing it (every space, the published cells, ``--arch``
resolution) pulls in no torch, and its modules import without a cycle."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_spaces_does_not_import_torch():
    loaded = _modules_after("import nao.spaces, nao.spaces.known, nao.spaces.resolve\n"
                            "from nao.spaces import space_names, get_space\n"
                            "[get_space(n) for n in space_names()]\n"
                            "from nao.spaces.resolve import resolve_arch; resolve_arch('naonet-a')")
    assert "nao.spaces.cells" in loaded and "nao.spaces.known" in loaded
    assert "torch" not in loaded and not any(m.startswith("nao.nn") for m in loaded)


def test_known_does_not_import_resolve():
    # resolve.py reads the published cells (resolve -> known); the other direction would close a cycle.
    import ast
    from pathlib import Path

    import nao.spaces

    tree = ast.parse((Path(nao.spaces.__file__).parent / "known.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "nao.spaces.resolve" not in imported and not any(m and m.startswith("nao.nn") for m in imported)
