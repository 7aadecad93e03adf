"""The layering of docs/architecture.md: the import-linter contracts in pyproject.toml hold,
the two contract types of our own find what they are for, and the app starts light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.architecture import AcyclicModulesContract
from tests.architecture import PrivateNamesContract

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("presidio_analyzer", "presidio_anonymizer", "spacy", "weasyprint", "boto3")


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
def test_starting_the_app_loads_no_presidio_spacy_weasyprint_or_boto3(tmp_path, module):
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
