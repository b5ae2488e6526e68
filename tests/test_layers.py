"""Every top-level module of wmstats is placed in a layer contract of ``.importlinter``.

``tox -e lint`` checks the contracts themselves (import-linter); this test makes
sure that a new module cannot escape them by not being named: each module of
``wmstats`` (and each plugin package) must appear in the file, in the core list
or as one of the outer layers.
"""

from __future__ import annotations

import configparser
import pkgutil
from pathlib import Path

import wmstats

CONFIG = Path(__file__).resolve().parents[1] / ".importlinter"
PLUGINS = ("wmstats_sqlite", "wmstats_couchdb")


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    assert parser.read(CONFIG, encoding="utf-8") == [str(CONFIG)]
    return parser


def _named(parser: configparser.ConfigParser) -> set[str]:
    names: set[str] = set()
    for section in parser.sections():
        for key in ("source_modules", "forbidden_modules", "ancestors", "root_packages"):
            names |= set(parser.get(section, key, fallback="").split())
    return names


def test_every_module_is_in_a_contract() -> None:
    named = _named(_contracts())
    modules = {f"wmstats.{info.name}" for info in pkgutil.iter_modules(wmstats.__path__)}
    assert {"wmstats.store", "wmstats.web", "wmstats.cli"} <= modules
    missing = sorted(m for m in modules | set(PLUGINS) if m not in named)
    assert not missing, (f"{', '.join(missing)}: name each in .importlinter (a core module "
                         f"in the 'core' contract's source_modules, else in the layer it "
                         f"belongs to)")


def test_the_core_contract_forbids_the_outer_layers() -> None:
    parser = _contracts()
    core = parser["importlinter:contract:core"]
    sources = set(core["source_modules"].split())
    forbidden = set(core["forbidden_modules"].split())
    assert not sources & forbidden
    assert {"wmstats.web", "wmstats.client", "wmstats.cli", "wmstats.bench",
            "wmstats.testing", *PLUGINS} <= forbidden
    assert {"wmstats.schema", "wmstats.query", "wmstats.store", "wmstats.source",
            "wmstats.mock", "wmstats.backends", "wmstats.plugins"} <= sources
    assert parser["importlinter:contract:acyclic"]["type"] == "acyclic_siblings"
