"""The `tpn` command line: parse, validate, call the engine; nothing else."""
from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import EXIT_INTERRUPTED, TpnError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tpn")
def cli() -> None:
    """Carry colour, HDR radiance or object masks from a few key-frames through a whole video."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def doctor(as_json: bool) -> None:
    """Report torch, device, compiled kernels, video codecs and EXR support."""
    from .doctor import format_report, report

    facts = report()
    click.echo(json.dumps(facts) if as_json else format_report(facts))


def main() -> None:
    """Entry point: run the CLI and map errors to the documented exit codes."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("tpn: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except TpnError as err:
        click.echo(f"tpn: {err}", err=True)
        sys.exit(err.exit_code)
    except SystemExit:
        raise
    except Exception as err:  # internal error: say so plainly, exit 1
        click.echo(f"tpn: internal error: {type(err).__name__}: {err}", err=True)
        sys.exit(1)
    sys.exit(0)
