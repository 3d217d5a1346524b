"""A client install does not pull a server: setup.py's base requirements are what ndex/ imports outside
the server, the server's packages are the `server` extra, and without them the client still works while
`ndex serve`/`token`/`demo` name the extra in one line. A package ndex/ never imports is a test dependency."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# distribution -> the module ndex imports it as (None: used through another package, never imported)
IMPORT_NAME = {"Pillow": "PIL", "SQLAlchemy": "sqlalchemy", "psycopg": None,
               "httptools": None, "uvloop": None, "fastapi-offline": "fastapi_offline"}
# modules that arrive with a requirement rather than being one
COMES_WITH = {"urllib3": "requests", "starlette": "fastapi", "anyio": "fastapi", "botocore": "boto3",
              "tornado": "neuroglancer"}
# ndex.testing: the conformance suites a backend's own tests reuse, so it may import the test tools
TESTING = "testing"
SERVER_ONLY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "httptools", "uvloop", "tensorstore")


def requirements() -> dict[str, list[str]]:
    """setup.py's BASE, SERVER and EXTRAS, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    wanted = [n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
              and n.targets[0].id in ("BASE", "SERVER", "ZARR", "EXTRAS")]
    values: dict[str, object] = {}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), "setup.py", "exec"), {}, values)  # plain literals
    return {"base": values["BASE"], **values["EXTRAS"]}


def dist_name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0]


def module_of(requirement: str) -> str | None:
    name = dist_name(requirement)
    return IMPORT_NAME.get(name, name)


def third_party_imports(*paths: Path) -> set[str]:
    """Top-level names of the non-stdlib modules that the .py files under `paths` import."""
    found = set()
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")) if f.suffix == ".py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            found |= {n.split(".")[0] for n in names}
    return {n for n in found if n not in sys.stdlib_module_names and n != "ndex"}


def provided(*extras: str) -> set[str]:
    reqs = requirements()
    modules = {module_of(r) for extra in extras for r in reqs[extra]} - {None}
    return modules | {m for m, via in COMES_WITH.items() if via in modules}


def test_the_base_install_holds_no_server_package():
    base = {module_of(r) for r in requirements()["base"]}
    assert not base & set(SERVER_ONLY)
    assert set(SERVER_ONLY) - {"starlette"} <= {module_of(r) or dist_name(r).lower() for r in requirements()["server"]}


def test_what_ndex_imports_outside_the_server_is_in_the_base_install_or_an_extra():
    client = third_party_imports(*(p for p in (ROOT / "ndex").iterdir() if p.name not in ("server", TESTING)))
    allowed = provided("base", "s3", "dask", "viewer", "server", "zarr")
    assert client <= allowed, client - allowed
    assert client & set(SERVER_ONLY) == {"uvicorn", "tensorstore"}  # imported only by `ndex serve` and the zarr sink


def test_the_server_needs_only_the_base_install_and_the_server_extra():
    server = third_party_imports(ROOT / "ndex" / "server")
    assert server <= provided("base", "server"), server - provided("base", "server")


def test_every_installed_package_is_imported_by_ndex_else_it_is_a_test_dependency():
    imported = third_party_imports(ROOT / "ndex")
    for extra in ("base", "server", "zarr", "s3", "dask", "viewer"):
        for requirement in requirements()[extra]:
            module = module_of(requirement)
            assert module is None or module in imported, f"{extra}: {requirement} is never imported by ndex/"
    assert "intern" not in imported and any(dist_name(r) == "intern" for r in requirements()["test"])


BLOCK_SERVER = f"""
import sys
BLOCKED = {SERVER_ONLY!r}
class NoServer:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NoServer())
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] in BLOCKED else real_find_spec(name, *a)
"""


def client_only(code: str, *argv: str) -> subprocess.CompletedProcess:
    """Run `code` in a Python where the server's packages cannot be imported, as in a base install."""
    return subprocess.run([sys.executable, "-c", BLOCK_SERVER + code, *argv], capture_output=True, text=True,
                          timeout=120)


def test_a_client_install_imports_ndex_and_its_api():
    done = client_only("import ndex\nfor name in ndex.__all__: getattr(ndex, name)\nprint('ok')")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("argv", [["ndpull", "--help"], ["ndpush", "--help"], ["ndex", "info", "--help"],
                                  ["ndex", "plan", "push", "--help"], ["ndex", "verify", "--help"]])
def test_a_client_install_runs_the_client_commands(argv):
    module = {"ndpull": "ndex.cli.pull", "ndpush": "ndex.cli.push", "ndex": "ndex.cli.main"}[argv[0]]
    done = client_only(f"from {module} import main\nsys.exit(main())", *argv[1:])
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


@pytest.mark.parametrize("argv", [["serve"], ["serve", "--help"], ["token", "list"], ["upgrade"],
                                  ["backup", "--to", "x"], ["demo"]])
def test_server_commands_name_the_extra_to_install(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = client_only("from ndex.cli.main import main\nsys.exit(main())", *argv)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: `ndex {argv[0]}` needs the server's packages (fastapi, uvicorn, "
                                   "sqlalchemy, alembic, tensorstore missing): pip install 'ndex[server]'")
    assert not list(tmp_path.iterdir())  # nothing created: the check comes first


def test_the_readme_commands_install_what_they_run():
    dev = (ROOT / "scripts" / "dev.py").read_text()
    assert '"server,zarr,test,s3,dask,postgres" if command in {"test", "setup"} else "server"' in dev


def test_a_client_install_names_the_zarr_extra_for_an_ome_zarr_pull(tmp_path):
    code = ("from pathlib import Path\nfrom ndex.sinks import open_sink\nfrom ndex.testing.sinks import make_spec\n"
            f"open_sink('zarr', make_spec(Path({str(tmp_path)!r})))")
    done = client_only(code)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("ndex.errors.UsageError: writing OME-Zarr needs tensorstore, "
                                                    "which is not installed: pip install 'ndex[zarr]'")
    assert not list(tmp_path.iterdir())
