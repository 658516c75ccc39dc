"""Dependencies point one way. The apps stand in layers, `accounts` -> `consent` -> `faceanalysis` -> `segments` ->
`campaigns`, and each imports only those to its left (a model may point right with a string foreign key). `config`
is the infrastructure every app may use and the composition root (its url modules) that names every app. The
project's own modules import one another without a cycle.

Read statically from the source, every import counts, at module level and inside functions alike (a lazy import is
still a dependency, and hides a cycle rather than removing it); only `if TYPE_CHECKING:` blocks are skipped."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("accounts", "consent", "faceanalysis", "segments", "campaigns")
PROJECT = (*LAYERS, "config")
# config's url modules compose every app; nothing imports them but Django (ROOT_URLCONF) and each other.
COMPOSITION = ("config.urls", "config.api.urls")
# What config's infrastructure may use of the apps: the API's throttle counts per API key (accounts, the bottom).
INFRASTRUCTURE_MAY_USE = ("accounts",)


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the most specific module of the project it names (or the name itself)."""

    module: str  # the importing module
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def project_modules(packages: tuple[str, ...] = PROJECT, root: Path = ROOT) -> dict[str, Path]:
    """Every module of these packages, migrations aside: dotted name -> file."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below `node`, at any depth (function bodies included), except `if TYPE_CHECKING:` bodies."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_only(child):
            for other in child.orelse:
                yield other
                yield from _statements(other)
            continue
        yield child
        yield from _statements(child)


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The most specific module of the project that `name` is or lies in (`a.b.func` -> `a.b`), else `name`."""
    candidate = name
    while candidate and candidate not in known:
        candidate = candidate.rpartition(".")[0]
    return candidate or name


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """What one module imports, each target resolved to a module of the project where it is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in _statements(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(Import(module, _resolve(alias.name, known), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                found.append(Import(module, _resolve(f"{base}.{alias.name}", known), node.lineno))
    return found


def all_imports(known: dict[str, Path]) -> list[Import]:
    return [found for module, path in known.items() for found in imports_of(module, path, known)]


def layer_violations(imports: list[Import]) -> list[Import]:
    """Imports of an app by an app to its left (the left one would then depend on the right one)."""
    def layer(name: str) -> int | None:
        top = name.split(".")[0]
        return LAYERS.index(top) if top in LAYERS else None

    return [
        found for found in imports
        if layer(found.module) is not None and layer(found.target) is not None
        and layer(found.target) > layer(found.module)
    ]


def config_violations(imports: list[Import]) -> list[Import]:
    """An app importing config's composition root, or config's infrastructure importing an app it may not."""

    def wrong(found: Import) -> bool:
        top, target_top = found.module.split(".")[0], found.target.split(".")[0]
        if top in LAYERS:
            return found.target in COMPOSITION
        infrastructure = top == "config" and found.module not in COMPOSITION
        return infrastructure and target_top in LAYERS and target_top not in INFRASTRUCTURE_MAY_USE

    return [found for found in imports if wrong(found)]


def import_cycle(imports: list[Import]) -> list[str] | None:
    """One cycle in the graph of imports between the project's modules (as a path that ends where it began), or
    None."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.target != found.module and found.target.split(".")[0] in PROJECT:
            graph.setdefault(found.module, set()).add(found.target)
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target):], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


# --- The line, for every app ---------------------------------------------------------------------------------------


def test_every_app_imports_only_apps_to_its_left() -> None:
    known = project_modules()
    assert {name.split(".")[0] for name in known} >= set(LAYERS)
    assert "campaigns.capture_pages" in known and "faceanalysis.selectors" in known  # function bodies are read too
    wrong = layer_violations(all_imports(known))
    assert not wrong, "imports against the layers (accounts -> consent -> faceanalysis -> segments -> campaigns):\n" + (
        "\n".join(map(str, wrong))
    )


def test_apps_use_config_as_infrastructure_and_config_composes_them() -> None:
    wrong = config_violations(all_imports(project_modules()))
    assert not wrong, "\n".join(map(str, wrong))


def test_the_project_has_no_import_cycle() -> None:
    cycle = import_cycle(all_imports(project_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# --- The checks themselves can fail --------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project_modules(root=tmp_path)


def test_the_layer_check_names_the_module_and_the_import_at_any_depth(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "consent/__init__.py": "",
        "consent/pages.py": "import accounts.models\n\ndef view():\n    from faceanalysis.models import Frame\n",
        "consent/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from campaigns import models\n",
        "consent/migrations/0001_initial.py": "from campaigns import models\n",
        "faceanalysis/__init__.py": "",
        "faceanalysis/models.py": "from . import models as _self\nfrom ..campaigns import views\n",
        "accounts/__init__.py": "", "accounts/models.py": "",
        "campaigns/__init__.py": "", "campaigns/views.py": "",
    })
    wrong = layer_violations(all_imports(known))
    assert [str(found) for found in wrong] == [
        "consent.pages (line 4) imports faceanalysis.models",
        "faceanalysis.models (line 2) imports campaigns.views",
    ]


def test_the_config_check_finds_an_app_importing_the_url_root(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "config/__init__.py": "", "config/urls.py": "import campaigns.urls\n",
        "config/outage.py": "from consent import guards\n", "config/api/__init__.py": "",
        "config/api/throttling.py": "from accounts.models import ApiKey\n",
        "consent/__init__.py": "", "consent/guards.py": "def f():\n    from config import urls\n",
        "accounts/__init__.py": "", "accounts/models.py": "",
        "campaigns/__init__.py": "", "campaigns/urls.py": "",
    })
    assert sorted(str(found) for found in config_violations(all_imports(known))) == [
        "config.outage (line 1) imports consent.guards",
        "consent.guards (line 2) imports config.urls",
    ]


def test_the_cycle_check_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    known = _tree(tmp_path, {
        "consent/__init__.py": "",
        "consent/a.py": "from consent import b\n",
        "consent/b.py": "import os\nfrom consent.c import thing\n",
        "consent/c.py": "def thing():\n    from consent.a import x\n",
        "consent/d.py": "from consent import a\n",
    })
    assert import_cycle(all_imports(known)) == ["consent.a", "consent.b", "consent.c", "consent.a"]
    (tmp_path / "consent/c.py").write_text("def thing():\n    return 1\n")
    assert import_cycle(all_imports(project_modules(root=tmp_path))) is None


# --- And at run time, for the app at the bottom of the consent line ------------------------------------------------


def test_consent_imports_no_other_app_of_ours() -> None:
    code = (
        "import django, os, sys;"
        "os.environ['DJANGO_SETTINGS_MODULE']='config.settings.test';"
        "import importlib, pkgutil;"
        "django.setup();"
        "before=set(sys.modules);"
        "import consent;"
        "[importlib.import_module('consent.'+m.name) for m in pkgutil.iter_modules(consent.__path__)];"
        "print(' '.join(sorted(m for m in set(sys.modules)-before)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    # django.setup() imports every app's models; what matters is what consent's own modules pull in.
    assert not [m for m in loaded if m.split(".")[0] in ("faceanalysis", "campaigns", "segments")]
