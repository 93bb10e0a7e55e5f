"""Views are leaves: only the app factory imports a ``views`` module, and the public
and maintainer views import everything at the top (no import cycle to hide)."""
import ast
from pathlib import Path

import marketplace

ROOT = Path(marketplace.__file__).parent
PUBLIC_VIEWS = ["accounts", "backlog", "claims", "pages", "payouts", "pledges", "projects"]


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_only_the_app_factory_imports_a_views_module():
    importers = sorted(
        str(path.relative_to(ROOT.parent))
        for path in [*ROOT.rglob("*.py"), *(ROOT.parent / "jobs").rglob("*.py")]
        if path != ROOT / "__init__.py"
        and any(name.split(".")[-1] == "views" or ".views." in name
                for name in _imported_modules(ast.parse(path.read_text())))
    )
    assert importers == []


def test_the_public_and_maintainer_views_import_nothing_inside_a_function():
    inside = []
    for domain in PUBLIC_VIEWS:
        tree = ast.parse((ROOT / domain / "views.py").read_text())
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside += [f"{domain}/views.py:{node.lineno}" for node in ast.walk(function)
                           if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert inside == []
