"""The oracle shares no code with the library it checks: its modules import nothing of
convpool but their own package, and it runs loaded on its own, with no convpool at all.
(An oracle that shared the library's padding or argument handling could not catch a
mistake there.)"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import convpool.reference

ORACLE_DIR = pathlib.Path(convpool.reference.__file__).parent
ORACLE_FILES = sorted(ORACLE_DIR.glob("*.py"))


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(level, module)`` of each import in ``path``: level 0 absolute, 1 ``from .``,
    2 ``from ..`` and so on."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_the_oracle_has_modules_to_check():
    assert {"conv.py", "pool.py", "geometry.py"} <= {path.name for path in ORACLE_FILES}


def test_oracle_modules_import_nothing_of_the_library():
    for path in ORACLE_FILES:
        for level, module in imported_modules(path):
            where = f"{path.name} imports {'.' * level}{module}"
            assert level <= 1, f"{where}: outside the oracle's package"
            if level == 0:
                top = module.split(".")[0]
                assert top != "convpool" or module.startswith("convpool.reference"), where


def test_oracle_runs_without_the_library():
    # Loaded from its directory under another name, the oracle's relative imports can
    # reach nothing beyond it, and no convpool module may be loaded along the way.
    code = f"""
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location(
    "lone_oracle", {str(ORACLE_DIR / "__init__.py")!r},
    submodule_search_locations=[{str(ORACLE_DIR)!r}])
oracle = importlib.util.module_from_spec(spec)
sys.modules["lone_oracle"] = oracle
spec.loader.exec_module(oracle)
x = np.arange(36.0).reshape(1, 1, 6, 6)
assert oracle.conv2d(x, np.ones((1, 1, 3, 3)), padding="same", padding_mode="circular").shape \\
    == (1, 1, 6, 6)
assert oracle.max_pool2d(x, 3, 2, 1, ceil_mode=True).shape == (1, 1, 4, 4)
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "convpool")
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True)
