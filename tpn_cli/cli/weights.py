"""`tpn weights list | path | verify | download` (:mod:`tpn_cli.weights`)."""
from __future__ import annotations

import json

import click

from ._group import cli


@cli.group(name="weights")
def weights_group() -> None:
    """List, locate, verify and download model weights.

    Bundled weights come with the package (tpn_cli/_weights; weights/ in a source
    checkout; $TPN_WEIGHTS_DIR overrides), with manifest.json: sha256, size, task, url,
    training data, licence, scores. Downloads go to $TPN_CACHE_DIR, else
    $XDG_CACHE_HOME/tpn, else ~/.cache/tpn. Everything works offline with the bundled
    files; `tpn doctor` says where they were found.
    """


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def weights_list(as_json: bool) -> None:
    """Show every known model: name, task, size, where it is (bundled/cache/missing).

    \b
    Example:
      tpn weights list
    """
    from .. import weights

    rows = weights.list_entries()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"no weights listed in {weights.bundled_dir() / weights.MANIFEST}")
        return
    for r in rows:
        size = f"{r['bytes'] / 1e6:.1f} MB" if r.get("bytes") else "?"
        default = " (default)" if r.get("default") else ""
        click.echo(f"{r['name']:<24} {r['task']:<8} {size:>9}  {r['where']}{default}")
        for k in ("training_data", "licence", "licences", "use", "scores"):
            if r.get(k):
                click.echo(f"    {k}: {r[k] if not isinstance(r[k], (dict, list)) else json.dumps(r[k])}")


@weights_group.command("path")
@click.argument("name")
def weights_path(name: str) -> None:
    """Print the file of weights NAME (exit 4 when it is not available).

    \b
    Example:
      tpn weights path colour-v1
    """
    from .. import weights

    found = weights.find(name)
    if found is None:
        raise weights._missing(name)
    click.echo(str(found))


@weights_group.command("verify")
@click.argument("name", required=False)
def weights_verify(name: str | None) -> None:
    """Check the sha256 of the present weights files against the manifest (exit 4 on a
    mismatch, or when NAME is missing).

    \b
    Example:
      tpn weights verify
    """
    from .. import weights
    from ..errors import WeightsUnavailableError

    rows = weights.verify(name)
    for r in rows:
        click.echo(f"{r['name']:<24} {r['status']:<9} {r['path'] or ''}")
    bad = [r for r in rows if r["status"] == "mismatch" or (name and r["status"] == "missing")]
    if bad:
        raise WeightsUnavailableError(f"{len(bad)} weights file(s) failed the check: "
                                      + ", ".join(r["name"] for r in bad),
                                      hint="re-download them: tpn weights download NAME --overwrite",
                                      code="WEIGHTS_CHECKSUM")


@weights_group.command("download")
@click.argument("name")
@click.option("--url", default=None, help="Address to fetch (default: $TPN_WEIGHTS_URL/FILE, else the manifest's url).")
@click.option("--sha256", default=None, help="Expected checksum (default: the manifest's).")
@click.option("--overwrite", is_flag=True, help="Download again even if present.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def weights_download(name: str, url: str | None, sha256: str | None, overwrite: bool, quiet: bool) -> None:
    """Download weights NAME into the cache, verify its checksum, print its path.

    Nothing is fetched when NAME is already installed (bundled or cached, with the right
    checksum). The file arrives as CACHE/FILE.part, is resumed from there when the
    transfer breaks off (in this call, or by running the command again), and is renamed
    into place only when complete and its sha256 matches. TPN_WEIGHTS_URL replaces the
    manifest's address with a mirror: an http(s):// or file:// base, or a folder.

    \b
    Example:
      tpn weights download colour-v1
      TPN_WEIGHTS_URL=/mnt/models tpn weights download colour-v1
      tpn weights download my-model --url https://example.org/my-model.pt --sha256 HEX
    """
    from .. import weights

    click.echo(str(weights.download(name, url, sha256, progress=not quiet, overwrite=overwrite)))
