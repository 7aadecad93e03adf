"""The README stays true: it opens with the two commands and lists every setting."""

from __future__ import annotations

from privacy.config import SETTINGS
from privacy.paths import ROOT


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "make run",
        "make test",
    ]


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name, *_ in SETTINGS if f"| `{name}` |" not in readme]
    assert missing == []


def test_every_environment_variable_the_code_reads_is_documented():
    import re

    documented = {name for name, *_ in SETTINGS}
    used = set()
    for path in [*(ROOT / "privacy").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]:
        used |= set(re.findall(r"PRIVACY_[A-Z0-9_]+", path.read_text()))
    assert sorted(used - documented) == []
