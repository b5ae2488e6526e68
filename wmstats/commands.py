"""Sub-commands of ``wmstats`` that plugins provide, and their registry.

A plugin adds a command by subclassing :class:`Command` and registering the
class in the ``wmstats.commands`` entry point group under the command's name::

    entry_points={"wmstats.commands": ["couch-seed = wmstats_couchdb.seed:SeedCommand"]}

:mod:`wmstats.cli` lists every installed command in ``wmstats -h`` and never
imports a plugin module itself; a command wmstats knows of but whose plugin is
missing says what to install.  The lookup rules are those of every plugin
registry (:mod:`wmstats.plugins`).
"""

from __future__ import annotations

import abc
import argparse
from typing import ClassVar, Final

from wmstats.plugins import PluginErrors, PluginRegistry

__all__ = [
    "Command",
    "CommandError",
    "UnknownCommandError",
    "MissingCommandError",
    "ENTRY_POINT_GROUP",
    "COMMANDS",
]

#: Entry point group that plugins register their command classes in.
ENTRY_POINT_GROUP: Final = "wmstats.commands"


class CommandError(Exception):
    """Base class of the errors of the command registry."""


class UnknownCommandError(CommandError, LookupError):
    """No command of that name is registered."""


class MissingCommandError(CommandError, ImportError):
    """A known command whose plugin is not installed (or fails to import)."""


class CommandOptionError(CommandError, ValueError):
    """Commands take no URL; never raised, there for :class:`PluginErrors`."""


class Command(abc.ABC):
    """One ``wmstats NAME`` sub-command; built with no arguments."""

    #: One line for ``wmstats -h``.
    help: ClassVar[str] = ""
    #: The text of ``wmstats NAME -h`` (default: :attr:`help`).
    description: ClassVar[str | None] = None

    @abc.abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its (sub)parser."""

    @abc.abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Run the command with the parsed options; returns the exit status."""


def _usage(name: str) -> str:
    return f"'wmstats {name}'"


#: The plugin commands: from the ``wmstats.commands`` entry points.
COMMANDS: Final[PluginRegistry[Command]] = PluginRegistry(
    "command", ENTRY_POINT_GROUP, Command,
    PluginErrors(CommandError, UnknownCommandError, MissingCommandError, CommandOptionError),
    known={"couch-seed": "wmstats_couchdb"}, usage=_usage)
