"""The layers, read from the source: the domain (`settlement/`) imports no sandbox and no
web framework; HTTP and the local provider sandboxes sit at the edge around it."""
from __future__ import annotations

import ast
from pathlib import Path

SETTLEMENT = Path(__file__).resolve().parent.parent / "settlement"
EDGE_PACKAGES = ("sandboxes", "flask", "flask_smorest", "werkzeug")


def _imported_modules(path: Path) -> list[str]:
    """Every module an `import` or `from ... import` in the file names, at any depth
    (imports inside functions count); relative imports stay inside settlement/."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def test_settlement_imports_no_sandbox_flask_or_werkzeug():
    offenders = sorted(
        f"{path.relative_to(SETTLEMENT.parent)}: {module}"
        for path in SETTLEMENT.rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in EDGE_PACKAGES or "sandbox" in module.split("."))
    assert offenders == []


def test_settlement_has_no_sandbox_package():
    assert [p for p in SETTLEMENT.rglob("*sandbox*") if "__pycache__" not in p.parts] == []
