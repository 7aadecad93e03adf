"""The layering of docs/architecture.md: the import-linter contracts in pyproject.toml hold,
the two contract types of our own find what they are for, and the app starts light."""

from __future__ import annotations

import ast
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.architecture import AcyclicModulesContract
from tests.architecture import PrivateNamesContract

ROOT = Path(__file__).resolve().parent.parent
# Loaded on first use only (the light start of docs/architecture.md).
HEAVY = (
    "presidio_analyzer",
    "presidio_anonymizer",
    "spacy",
    "weasyprint",
    "pypdf",
    "boto3",
    "flask_migrate",
    "alembic",
    "authlib",
    "requests",
    "jsonschema",
)


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_tasks_are_queued_by_name_and_found_by_autodiscovery_never_imported():
    graph = grimp.build_graph("privacy", "workers", cache_dir=None)
    tasks = sorted(m for m in graph.modules if m.endswith(".tasks"))
    assert "privacy.dsr.tasks" in tasks
    assert {m: graph.find_modules_that_directly_import(m) for m in tasks} == {
        m: set() for m in tasks
    }


# The imports made inside a function, each for the light start or another stated reason:
# (module, what it imports, with the names `from X import` brings). Anything else belongs at
# the top of its file; one that seems to need hiding in a function is a cycle to cut.
LAZY_IMPORTS = {
    ("privacy", "privacy.app.create_app"),  # `import privacy` stays free of Flask
    ("privacy.auth.google", "privacy.auth.oidc"),
    ("privacy.database", "flask_migrate.Migrate"),
    ("privacy.database", "flask_migrate.cli.db"),
    ("privacy.dsr.package", "jsonschema"),
    ("privacy.outbound", "privacy.http_client"),
    ("privacy.pdf", "weasyprint"),
    ("privacy.pdf", "weasyprint.urls.URLFetcher"),
    ("privacy.pdf", "weasyprint.urls.URLFetcherResponse"),
    ("privacy.pdf", "pypdf.PdfReader"),
    ("privacy.storage", "boto3"),
    ("privacy.storage", "botocore.config.Config"),
    ("privacy.storage", "boto3.s3.transfer.TransferConfig"),
    ("privacy.storage", "boto3.exceptions.Boto3Error"),
    ("privacy.storage", "botocore.exceptions.BotoCoreError"),
    ("privacy.storage", "botocore.exceptions.ClientError"),
    ("privacy.scrubber.services", "privacy.scrubber.engine.Scrubber"),
    ("privacy.scrubber.logfilter", "privacy.scrubber.engine.Scrubber"),
    # The scrubber itself: the CLI answers --help without its engine; the engine scans and
    # replaces without Presidio and loads spaCy and Presidio's US recognizers only when a
    # model or those entities are needed.
    ("privacy.scrubber.cli", "privacy.scrubber.engine"),
    ("privacy.scrubber.cli", "privacy.scrubber.structured"),
    ("privacy.scrubber.cli", "tqdm.tqdm"),
    ("privacy.scrubber.engine", "spacy"),
    ("privacy.scrubber.engine", "presidio_analyzer.predefined_recognizers.UsBankRecognizer"),
    ("privacy.scrubber.engine", "presidio_analyzer.predefined_recognizers.UsItinRecognizer"),
    ("privacy.scrubber.engine", "presidio_analyzer.predefined_recognizers.UsLicenseRecognizer"),
    ("privacy.scrubber.engine", "presidio_analyzer.predefined_recognizers.UsPassportRecognizer"),
    ("privacy.scrubber.engine", "presidio_analyzer.predefined_recognizers.UsSsnRecognizer"),
}


def _function_imports(path: Path, module: str) -> set[tuple[str, str]]:
    found = set()
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                found.update((module, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.update((module, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def test_imports_are_at_the_top_of_files_but_for_the_listed_lazy_loads():
    found = set()
    for root in ("privacy", "workers"):
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found |= _function_imports(path, module)
    assert found - LAZY_IMPORTS == set(), "move these imports to the top of their files"
    assert LAZY_IMPORTS - found == set(), "no longer imported in a function: drop from the list"


# The edges: the modules that may read Flask's request, `g` or session. Everything below
# them (services, models, tasks, the infrastructure they use) takes what it needs as
# arguments: the actor, the account, the request id (privacy.logs).
EDGES = (
    "privacy.*.routes",
    "privacy.*.routes.*",
    "privacy.*.pages",
    "privacy.*.pages.*",
    "privacy.auth.google",
    "privacy.auth.oidc",  # the sign-in flow's state lives in the session cookie
    "privacy.auth.permissions",
    "privacy.auth.sessions",
    "privacy.database",  # whether the current request writes (SQLite's write lock)
    "privacy.errors",
    "privacy.logs",
    "privacy.pages",
    "privacy.security",
)


def test_only_the_edges_read_the_request():
    readers = set()
    for path in sorted((ROOT / "privacy").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                if {a.name for a in node.names} & {"g", "request", "session"}:
                    readers.add(module)
    assert readers, "the check finds nothing: has Flask's import style changed?"
    assert {m for m in readers if not any(fnmatch.fnmatch(m, e) for e in EDGES)} == set()


def _package(tmp_path: Path, files: dict[str, str]) -> grimp.ImportGraph:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        return grimp.build_graph("shop", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "shop" or m.startswith("shop.")]:
            del sys.modules[name]


def _contract(cls, **options):
    return cls(name="test", session_options={}, contract_options=options)


def test_a_cycle_through_a_function_local_import_breaks_the_acyclic_contract(tmp_path):
    graph = _package(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders.py": "from shop import billing\n",
            "shop/billing.py": "from shop import mail\n",
            "shop/mail.py": "def send():\n    from shop import orders\n",
            "shop/catalog.py": "from shop import orders\n",
        },
    )
    check = _contract(AcyclicModulesContract, packages=["shop"]).check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["cycles"] == [
        ("shop.billing", "shop.mail", "shop.orders", "shop.billing")
    ]


def test_a_one_way_package_keeps_the_acyclic_contract(tmp_path):
    graph = _package(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders.py": "from shop import billing\n",
            "shop/billing.py": "from shop import mail\n",
            "shop/mail.py": "",
        },
    )
    assert _contract(AcyclicModulesContract, packages=["shop"]).check(graph, False).kept


def test_another_domains_private_names_break_the_contract_and_ones_own_do_not(tmp_path):
    graph = _package(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders/__init__.py": "",
            "shop/orders/services.py": "def _total():\n    pass\n",
            "shop/orders/routes.py": "from shop.orders.services import _total\n",
            "shop/billing/__init__.py": "",
            "shop/billing/services.py": (
                "from shop.orders import services as orders\n"
                "from shop.orders.services import _total\n\n"
                "def bill():\n    return orders._total(), orders.__name__\n"
            ),
        },
    )
    sys.path.insert(0, str(tmp_path))
    try:
        check = _contract(PrivateNamesContract, packages=["shop"]).check(graph, False)
    finally:
        sys.path.remove(str(tmp_path))
    assert not check.kept
    assert sorted(check.metadata["uses"]) == [
        ("shop.billing.services", 2, "shop.orders.services._total"),
        ("shop.billing.services", 5, "shop.orders.services._total"),
    ]


@pytest.mark.parametrize("module", ["wsgi", "workers.celery_app"])
def test_starting_the_app_loads_no_heavy_library_before_it_is_needed(tmp_path, module):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_")}
    env["PRIVACY_INSTANCE_PATH"] = str(tmp_path / "instance")
    env["PRIVACY_BASE_URL"] = "http://127.0.0.1:8000"
    code = (
        f"import sys, {module}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
