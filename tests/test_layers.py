"""The import arrows of architecture.md: a wrong arrow fails here, naming the file and the import."""
import ast
from pathlib import Path

import ndex

PKG = Path(ndex.__file__).parent
CORE = {"ndex.geometry", "ndex.codecs", "ndex.errors", "ndex.config", "ndex.progress", "ndex.synthetic",
        "ndex.zarr_http"}

# layer -> the ndex layers it may import (besides itself); prefixes
ALLOWED = {
    "core": set(),
    "ndex.client": {"core"},
    "ndex.sources": {"core"},
    "ndex.sinks": {"core"},
    "ndex.transfer": {"core", "ndex.client", "ndex.sources", "ndex.sinks"},
    "ndex.plan": {"core", "ndex.transfer", "ndex.client", "ndex.sources", "ndex.sinks"},
    "ndex.jobs": {"core", "ndex.transfer", "ndex.client", "ndex.sources", "ndex.sinks"},
    "ndex.notify": {"core"},
    "ndex.viewer": {"core"},  # neuroglancer's server + zarr answers, shared by ndex serve and ndex view
    "ndex.server": {"core", "ndex.viewer"},
    "ndex.cli": {"*"},
    "ndex.testing": {"core", "ndex.sources", "ndex.sinks"},  # conformance suites for tests; imported by no layer
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> str:
    if name in CORE or name == "ndex":
        return "core"
    for layer in ALLOWED:
        if name == layer or name.startswith(layer + "."):
            return layer
    raise AssertionError(f"{name} belongs to no layer of architecture.md: add it to ALLOWED deliberately")


def ndex_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("ndex"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ndex") and node.level == 0:
            yield node.module


def test_imports_point_one_way():
    wrong = []
    for path in sorted(PKG.rglob("*.py")):
        src = layer_of(module_name(path))
        for target in ndex_imports(path):
            dst = layer_of(target)
            allowed = ALLOWED[src]
            if dst != src and "*" not in allowed and dst not in allowed:
                wrong.append(f"{path.relative_to(PKG.parent)} imports {target} ({src} -> {dst})")
    assert not wrong, "layer violations:\n" + "\n".join(wrong)


def test_only_the_http_module_knows_requests_and_the_library_stays_silent():
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        name = module_name(path)
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        if "requests" in imported and name != "ndex.client._http":
            offenders.append(f"{name} imports requests")
        if "tqdm" in imported and not name.startswith("ndex.cli"):
            offenders.append(f"{name} imports tqdm")
        if name.startswith("ndex.cli") or name.startswith("ndex.server.cli"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{name}:{node.lineno} prints")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys"
                    and node.attr in {"exit", "argv"}):
                offenders.append(f"{name}:{node.lineno} uses sys.{node.attr}")
    assert not offenders, "\n".join(offenders)


def test_public_api_is_what_all_lists():
    for name in ndex.__all__:
        if name == "__version__":
            continue
        module = ndex._LAZY[name]
        if (PKG.parent / (module.replace(".", "/") + ".py")).exists() or (
                PKG.parent / module.replace(".", "/") / "__init__.py").exists():
            assert getattr(ndex, name) is not None
