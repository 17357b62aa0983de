"""`b2ner <stage>`: one entry point; each command is a thin wrapper over a plain function.

Command modules live in `b2ner_cli/commands/` and expose `register(app)`; they import engines
(Spark, Ray) inside the command body so `b2ner --help` stays fast.

Exit codes: 0 success, 1 the job ran and failed (e.g. unmapped labels), 2 bad arguments or config.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from b2ner_cli import commands
from b2ner_cli.options import UsageError
from b2ner_common.config import ConfigError
from b2ner_common.taxonomy.model import TaxonomyError

app = typer.Typer(
    name="b2ner",
    help="Open NER at scale: ingest -> taxonomy -> embed/select -> train -> predict -> evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Open NER at scale. Every command takes --config FILE and key=value overrides."""


def _register_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        module.register(app)


_register_commands()


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException classes, Abort classes) of every click that typer may raise from.

    typer >= 0.2x raises from its own bundled copy (`typer._click`), not from the `click` package, so
    checking only `click.ClickException` let usage errors escape as tracebacks with exit code 1.
    """
    errors: list[type] = []
    aborts: list[type] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(mod.ClickException)
        if hasattr(mod, "Abort"):
            aborts.append(mod.Abort)
    return tuple(errors), tuple(aborts)


def main(argv: list[str] | None = None) -> int:
    click_errors, click_aborts = _click_exceptions()
    try:
        # With standalone_mode=False click returns a typer.Exit's code instead of raising it.
        rc = app(args=argv, standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except (ConfigError, UsageError, FileNotFoundError, TaxonomyError) as e:
        console.print(f"error: {e}", style="bold red", highlight=False, markup=False)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return int(e.code or 0)
    except click_errors as e:  # usage errors (unknown option or command, missing value): exit 2
        e.show()
        return e.exit_code
    except click_aborts:
        return 130


if __name__ == "__main__":
    sys.exit(main())
