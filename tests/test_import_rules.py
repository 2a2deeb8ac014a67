"""The rules between the apps (`docs/architecture.md`, "Rules between the apps"), read from the
source with `ast`: every `import x` and `from x import y`, at module level, inside functions
and under `if TYPE_CHECKING:` alike, and every loading of a module by name. Migrations are
left out (Django writes them). Nothing is imported: the test reads the files.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPS = ("config", "accounts", "chat", "moderation", "inference", "chatclient", "staff", "api")
SERVER = ("config", "accounts", "chat", "moderation", "inference", "frontend", "django", "staff")

# Callables that import a module named by a string: readers and import-graph tools cannot see
# what they load.
DYNAMIC_IMPORTERS = {"import_module", "__import__"}
# (file, the module-name argument's source) allowed to load a module by name.
ALLOWED_DYNAMIC_IMPORTS = {
    # The session backend is a setting; import_module is Django's documented way to load it
    # (what django.contrib.sessions.middleware does).
    ("accounts/ws_auth.py", "settings.SESSION_ENGINE"),
}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository
    line: int
    module: str  # absolute, relative imports resolved
    source: str

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source}"


def python_files(app: str) -> list[Path]:
    return sorted(
        path
        for path in (REPO / app).rglob("*.py")
        if "migrations" not in path.relative_to(REPO).parts
    )


def module_of(relative: Path) -> tuple[str, bool]:
    """The dotted module name of a file, and whether it is a package's `__init__`."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imports_in(tree: ast.AST, path: str, module: str, is_package: bool) -> Iterator[Import]:
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, ast.unparse(node))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield Import(path, node.lineno, target, ast.unparse(node))


def dynamic_imports_in(tree: ast.AST, path: str) -> Iterator[str]:
    """Each use of `importlib.import_module` or `__import__` (under any alias), as file:line."""
    names = set(DYNAMIC_IMPORTERS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("importlib", "builtins"):
            names |= {a.asname for a in node.names if a.name in DYNAMIC_IMPORTERS and a.asname}
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and node.id in names) or (
            isinstance(node, ast.Attribute) and node.attr in DYNAMIC_IMPORTERS
        ):
            call = calls.get(id(node))
            argument = ast.unparse(call.args[0]) if call is not None and call.args else None
            if (path, argument) in ALLOWED_DYNAMIC_IMPORTS:
                continue
            yield f"{path}:{node.lineno}: {ast.unparse(call or node)}"


@cache
def parsed(app: str) -> list[tuple[str, str, bool, ast.Module]]:
    files = []
    for file in python_files(app):
        relative = file.relative_to(REPO)
        module, is_package = module_of(relative)
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(relative))
        files.append((relative.as_posix(), module, is_package, tree))
    return files


def imports_of(apps: Iterable[str]) -> list[Import]:
    return [
        found
        for app in apps
        for path, module, is_package, tree in parsed(app)
        for found in imports_in(tree, path, module, is_package)
    ]


def offending(apps: Iterable[str], forbidden: Iterable[str]) -> list[str]:
    banned = set(forbidden)
    return [str(found) for found in imports_of(apps) if found.top in banned]


def report(offences: list[str]) -> str:
    return "\n  " + "\n  ".join(offences)


def test_every_app_is_read_and_its_imports_are_found() -> None:
    # Guards the rules below against passing on nothing.
    for app in APPS:
        assert parsed(app), f"no Python files found in {app}/"
    chat_imports = imports_of(["chat"])
    assert any(found.top == "accounts" for found in chat_imports)
    assert all(found.module for found in chat_imports), "an import resolved to no module"


def test_imports_inside_functions_and_relative_imports_are_counted() -> None:
    source = (
        "import os\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "def later():\n"
        "    import inference.tasks\n"
        "    from chat.store import get_db\n"
    )
    found = {
        (i.line, i.module)
        for i in imports_in(ast.parse(source), "moderation/sub/mod.py", "moderation.sub.mod", False)
    }

    assert found == {
        (1, "os"),
        (2, "moderation.sub"),
        (3, "moderation.other"),
        (5, "inference.tasks"),
        (6, "chat.store"),
    }


def test_dynamic_imports_are_found_under_any_spelling() -> None:
    source = (
        "import importlib\n"
        "from importlib import import_module as load\n"
        "importlib.import_module('chat.services')\n"
        "load('chat.store')\n"
        "__import__('inference')\n"
        "loader = importlib.import_module\n"
        "importlib.util.find_spec('vllm')\n"
    )
    lines = [int(hit.split(":")[1]) for hit in dynamic_imports_in(ast.parse(source), "x.py")]

    assert sorted(lines) == [3, 4, 5, 6]


def test_moderation_and_accounts_import_neither_chat_nor_inference_nor_the_client() -> None:
    offences = offending(["moderation", "accounts"], ["chat", "inference", "chatclient"])

    assert not offences, "moderation/accounts import chat, inference or chatclient:" + report(
        offences
    )


def test_chat_never_imports_inference() -> None:
    # chat enqueues inference work by task name through the Celery app in config.
    offences = offending(["chat"], ["inference"])

    assert not offences, "chat imports inference (enqueue by task name instead):" + report(offences)


def test_no_app_imports_the_staff_console() -> None:
    # staff reads and acts on every other app (and re-registers their admins to audit them);
    # an import back would be a cycle.
    others = [app for app in APPS if app != "staff"]
    offences = offending(others, ["staff"])

    assert not offences, "an app imports staff:" + report(offences)


def test_the_client_imports_nothing_of_the_server_nor_django() -> None:
    offences = offending(["chatclient"], SERVER)

    assert not offences, "chatclient imports the server or Django:" + report(offences)


def test_no_app_loads_a_module_by_name() -> None:
    offences = [
        hit
        for app in APPS
        for path, _, _, tree in parsed(app)
        for hit in dynamic_imports_in(tree, path)
    ]

    assert not offences, (
        "importlib.import_module / __import__ hide an import from readers and tools; "
        "import the module instead:" + report(offences)
    )
