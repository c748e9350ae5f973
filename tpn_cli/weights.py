"""Model weights: the bundled files, the manifest, the download cache, name resolution.

Where weights live, searched in this order:

1. bundled, described by ``manifest.json`` in the same folder: ``$TPN_WEIGHTS_DIR`` if
   set; else ``tpn_cli/_weights`` inside the installed package (a wheel carries the
   repository's ``weights/`` there, copied by setup.py's build step); else ``weights/``
   of the source checkout the package is imported from (editable install, or running
   from the repository);
2. cache: ``$TPN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tpn``, else ``~/.cache/tpn``; filled
   by ``tpn weights download``.

Manifest (``weights/manifest.json``)::

    {"weights": [
      {"name": "colour-v1", "file": "colour-v1.tpn", "task": "colour",
       "sha256": "<64 hex>", "bytes": 1234567, "default": true,
       "url": "https://github.com/.../releases/download/weights-v1/colour-v1.tpn",
       "training_data": "...", "licences": ["Apache-2.0"], "scores": {"psnr_k10": 37.1}}
    ]}

``weights`` may also be an object keyed by name. Only ``name``/``file``/``sha256``
matter for finding and verifying a file; the rest is shown by ``tpn weights list``.
The default model of a task is the entry with ``"default": true``, else the first one
of that task. A file listed with a sha256 is checked against it each time it is
resolved (the files are ~2 MB: a few milliseconds), so a damaged, truncated or foreign
file is refused by name instead of failing inside torch or, worse, loading.

Downloads (:func:`download`) never run implicitly: a command that lacks its model
stops with exit 4 and the download command, so tpn touches the network only when
asked to, and not even then when the model is already installed.

Every failure is a :class:`~tpn_cli.errors.WeightsUnavailableError` (exit 4) whose
message names the file and the fix.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError, WeightsUnavailableError

__all__ = ["WeightsEntry", "bundled_dir", "bundled_location", "cache_dir", "download",
           "download_url", "find", "load_manifest", "release_url", "resolve", "sha256_file",
           "verify"]

MANIFEST = "manifest.json"
#: Folder inside the package that a wheel's build step fills from the repository's weights/.
PACKAGE_WEIGHTS = "_weights"
#: Release assets of the project: every shipped file is uploaded to this release under
#: its own name (the manifest's ``url``); ``$TPN_WEIGHTS_URL`` replaces this base.
RELEASE_BASE = "https://github.com/tpn-video/tpn/releases/download/weights-v1/"
#: How many times one ``download`` call resumes a transfer that broke off half-way.
DOWNLOAD_ATTEMPTS = 3
#: Accepted spellings of a task in the manifest / CLI.
_TASK_ALIASES = {"color": "colour", "colorize": "colour", "segmentation": "segment"}


def _norm_task(task: str) -> str:
    return _TASK_ALIASES.get(task, task)


@dataclass
class WeightsEntry:
    """One manifest entry (unknown keys are kept in ``extra`` and shown as they are)."""

    name: str
    file: str
    task: str = "?"
    sha256: str | None = None
    bytes: int | None = None
    url: str | None = None
    default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str | None = None) -> "WeightsEntry":
        d = dict(d)
        name = d.pop("name", name)
        file = d.pop("file", None) or f"{name}.pt"
        known = {k: d.pop(k) for k in ("task", "sha256", "bytes", "url", "default") if k in d}
        if "task" in known:
            known["task"] = _norm_task(str(known["task"]))
        return cls(name=str(name), file=str(file), extra=d, **known)


def bundled_location() -> tuple[Path, str]:
    """The folder of shipped weights and how it was found.

    Returns ``(folder, source)``, source one of ``"$TPN_WEIGHTS_DIR"``, ``"package"``
    (installed with tpn, e.g. from a wheel), ``"source checkout"`` or ``"not found"``
    (then the folder is where the package's copy should have been).
    """
    env = os.environ.get("TPN_WEIGHTS_DIR")
    if env:
        return Path(env), "$TPN_WEIGHTS_DIR"
    # importlib.resources gives the package's own folder wherever it is installed; only a
    # real folder is usable (torch.load and the checksum read files by path).
    packaged = importlib.resources.files(__package__) / PACKAGE_WEIGHTS
    if isinstance(packaged, Path) and (packaged / MANIFEST).is_file():
        return packaged, "package"
    # A source checkout (editable install, or run from the repository): weights/ beside
    # the package. setup.py must be there too, so a stray site-packages/weights of some
    # other distribution is never taken for ours.
    root = Path(__file__).resolve().parent.parent
    if (root / "setup.py").is_file() and (root / "weights" / MANIFEST).is_file():
        return root / "weights", "source checkout"
    return Path(str(packaged)), "not found"


def bundled_dir() -> Path:
    """The folder of shipped weights (see :func:`bundled_location`)."""
    return bundled_location()[0]


def cache_dir() -> Path:
    """Download cache: ``$TPN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tpn``, else ``~/.cache/tpn``."""
    env = os.environ.get("TPN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tpn"


def release_url(file: str) -> str:
    """The project's release-asset address of a shipped weights file (the manifest's ``url``)."""
    return RELEASE_BASE + file


def load_manifest(folder: Path | None = None) -> list[WeightsEntry]:
    """Entries of ``folder/manifest.json`` (empty list when there is no manifest).

    Raises:
        WeightsUnavailableError: the manifest exists but is not valid JSON of the
            documented shape.
    """
    path = (folder or bundled_dir()) / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        raw = data["weights"] if isinstance(data, dict) and "weights" in data else data
        if isinstance(raw, dict):
            return [WeightsEntry.from_dict(v, name=k) for k, v in raw.items()]
        return [WeightsEntry.from_dict(v) for v in raw]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsUnavailableError(f"weights manifest is not valid ({exc})", path=path,
                                      hint=_restore_hint(path), code="MANIFEST_INVALID") from exc


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def _entry(name: str, entries: list[WeightsEntry]) -> WeightsEntry | None:
    for e in entries:
        if e.name == name or e.file == name or Path(e.file).stem == name:
            return e
    return None


def _candidates(name: str) -> tuple[WeightsEntry | None, list[Path]]:
    """The manifest entry of ``name`` and its existing files, bundled before cached."""
    e = _entry(name, load_manifest())
    paths = []
    if e is not None:
        paths += [bundled_dir() / e.file, cache_dir() / e.file]
    paths += [cache_dir() / name, cache_dir() / f"{name}.pt"]
    seen: list[Path] = []
    for p in paths:
        if p.is_file() and p not in seen:
            seen.append(p)
    return e, seen


def find(name: str) -> Path | None:
    """The file of weights ``name`` (bundled first, then the cache), or None. Not hashed."""
    return next(iter(_candidates(name)[1]), None)


def _restore_hint(path: Path, name: str | None = None) -> str:
    """How to get a good copy of ``path`` (a model file or the manifest) back."""
    # a good copy in the cache is used in place of a damaged bundled one (see _checked)
    download = f"tpn weights download {name} --overwrite" if name else None
    if path.parent == cache_dir():
        return f"delete it and download it again: {download}"
    where = bundled_location()[1]
    if where == "source checkout":
        fix = "restore it from the repository: git checkout weights/ (git lfs pull if it is an LFS pointer)"
    elif where == "package":
        fix = ("reinstall tpn: pip install --force-reinstall --no-deps with the wheel or source "
               "folder it was installed from")
    else:
        fix = "restore the folder $TPN_WEIGHTS_DIR points to, or unset it"
    return fix + (f"; or put a good copy in the cache: {download}" if download else "")


def _checked(name: str) -> Path | None:
    """The first file of ``name`` whose sha256 matches the manifest (None when none exists).

    Raises:
        WeightsUnavailableError: files exist but none matches; names the first one.
    """
    e, paths = _candidates(name)
    if not paths:
        return None
    if e is None or not e.sha256:
        return paths[0]  # nothing to check against (a file downloaded with --url only)
    for p in paths:
        if sha256_file(p) == e.sha256.lower():
            return p
    first = paths[0]
    size = first.stat().st_size
    what = (f"truncated ({size} of {e.bytes} bytes)" if e.bytes and size < e.bytes
            else "damaged or not the file the manifest lists")
    raise WeightsUnavailableError(
        f"weights {e.name!r} are {what}: sha256 {sha256_file(first)}, expected {e.sha256}",
        path=first, hint=_restore_hint(first, e.name), code="WEIGHTS_CORRUPT")


def default_name(task: str) -> str | None:
    """The manifest's default weights name for ``task`` (None when there are none)."""
    task = _norm_task(task)
    of_task = [e for e in load_manifest() if e.task == task]
    for e in of_task:
        if e.default:
            return e.name
    return of_task[0].name if of_task else None


def _missing(name: str, task: str | None = None) -> WeightsUnavailableError:
    e = _entry(name, load_manifest())
    dest = cache_dir() / (e.file if e else f"{name}.pt")
    if e is not None and (e.url or os.environ.get("TPN_WEIGHTS_URL")):
        hint = (f"run: tpn weights download {name}   (saves to {dest}; offline: set "
                "TPN_WEIGHTS_URL to a mirror, or pass --weights PATH/TO/MODEL.tpn)")
    else:
        hint = (f"run: tpn weights download {name} --url URL   (saves to {dest}), "
                "or pass --weights PATH/TO/MODEL.tpn")
    what = f"weights {name!r}" + (f" for {task}" if task else "")
    return WeightsUnavailableError(f"{what} not found in {bundled_dir()} or {cache_dir()}",
                                   hint=hint, code="WEIGHTS_MISSING")


def resolve(spec: str | None, task: str) -> Path:
    """The model file for ``--weights spec`` (a path or a name; None: the task's default).

    A name is looked up in the bundled folder, then the cache, and its file checked
    against the manifest's sha256. Never touches the network.

    Raises:
        WeightsUnavailableError: nothing found (the message gives the download command),
            or the file found fails its checksum (the message names it and the fix).
    """
    if spec:
        p = Path(spec).expanduser()
        if p.is_file():
            return p
        if p.suffix or os.sep in spec:  # looks like a path, not a name
            raise WeightsUnavailableError("weights file not found", path=p,
                                          hint="check the path, or pass a name from "
                                               "`tpn weights list`", code="WEIGHTS_MISSING")
        found = _checked(spec)
        if found is None:
            raise _missing(spec, task)
        return found
    name = default_name(task)
    if name is None:
        raise WeightsUnavailableError(
            f"no {_norm_task(task)} weights are installed (no entry in {bundled_dir() / MANIFEST})",
            hint="pass --weights PATH/TO/MODEL.tpn, or reinstall tpn (its wheel carries the "
                 "shipped weights), or download them: tpn weights download NAME --url URL",
            code="WEIGHTS_MISSING")
    found = _checked(name)
    if found is None:
        raise _missing(name, _norm_task(task))
    return found


def load(spec: str | None, task: str, device: str = "cpu"):
    """Resolve and load a model for ``task``; checks the model was trained for it.

    Raises:
        WeightsUnavailableError: missing or unreadable file. UsageError: wrong task.
    """
    from .models import load_model

    path = resolve(spec, task)
    try:
        model = load_model(path, map_location=device)
    except Exception as exc:  # torch raises many types for foreign/corrupt files
        raise WeightsUnavailableError(f"cannot load the model ({type(exc).__name__}: {exc})",
                                      path=path, hint="re-download it (tpn weights download NAME) "
                                                      "or check `tpn weights verify`",
                                      code="WEIGHTS_CORRUPT") from exc
    if _norm_task(model.config.task) != _norm_task(task):
        raise UsageError(f"these weights are for {model.config.task!r}, not {_norm_task(task)!r}",
                         path=path, hint="pass weights trained for this command (tpn weights list)")
    return model.to(device), path


def verify(name: str | None = None) -> list[dict[str, Any]]:
    """Check sha256 and size of every manifest entry (or just ``name``) that is present.

    Returns one dict per entry: name, path (or None), status ``ok`` / ``missing`` /
    ``mismatch`` / ``unchecked`` (no sha256 in the manifest).
    """
    entries = load_manifest()
    if name is not None:
        e = _entry(name, entries)
        if e is None:
            path = find(name)
            if path is None:
                raise _missing(name)
            return [{"name": name, "path": str(path), "status": "unchecked", "sha256": sha256_file(path)}]
        entries = [e]
    out = []
    for e in entries:
        _, paths = _candidates(e.name)
        row: dict[str, Any] = {"name": e.name, "path": str(paths[0]) if paths else None}
        if not paths:
            row["status"] = "missing"
        elif not e.sha256:
            row["status"], row["sha256"] = "unchecked", sha256_file(paths[0])
        else:
            # the file a run would use: the first copy that matches, else the first one
            digests = [(p, sha256_file(p)) for p in paths]
            good = [(p, d) for p, d in digests if d == e.sha256.lower()]
            path, digest = (good or digests)[0]
            row.update(path=str(path), sha256=digest, status="ok" if good else "mismatch")
        out.append(row)
    return out


def download_url(name: str, url: str | None = None) -> str | None:
    """Where ``download`` fetches ``name`` from: ``url`` if given, else
    ``$TPN_WEIGHTS_URL`` + the manifest's file name (a mirror; a plain folder path or a
    ``file://`` address for an air-gapped site), else the manifest's ``url``; None when
    nothing is known.
    """
    if url:
        return url
    e = _entry(name, load_manifest())
    base = os.environ.get("TPN_WEIGHTS_URL")
    if base:
        if "://" not in base:  # a folder on this machine or a mounted share
            base = Path(base).expanduser().resolve().as_uri()
        file = e.file if e else (name if Path(name).suffix else f"{name}.pt")
        return base.rstrip("/") + "/" + file
    return e.url if e else None


class _Interrupted(Exception):
    """The transfer broke off; the ``.part`` file keeps what arrived."""


def _fetch(url: str, part: Path, label: str, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part``, asking the server to resume (HTTP Range)
    from the bytes already there.

    Raises:
        urllib.error.URLError: no answer or an HTTP error (404, ...) before any data.
        _Interrupted: the connection dropped or timed out during the transfer.
    """
    from tqdm import tqdm

    from . import __version__

    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": f"tpn/{__version__}"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing after `have`: the part is complete (the checksum decides)
        raise
    with resp:
        content_range = resp.headers.get("Content-Range") or ""
        if have and not (resp.status == 206 and content_range.startswith(f"bytes {have}-")):
            have = 0  # the server sent the whole file (no Range support, file://): start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else None
        got = 0
        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, desc=label, disable=not progress, leave=False) as bar:
            try:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
                raise _Interrupted(f"{have + got} bytes received ({exc})") from exc
    # http.client ends a short body silently (no error when the server closes early), so
    # compare with the announced length.
    if length is not None and got < int(length):
        raise _Interrupted(f"{have + got} of {total} bytes received")


def download(name: str, url: str | None = None, sha256: str | None = None, *,
             progress: bool = True, timeout: float = 60.0, overwrite: bool = False) -> Path:
    """Download weights ``name`` into the cache; returns the file's path.

    When the model is already installed (bundled or cached, matching the manifest's
    sha256) its path is returned and the network is not touched (``overwrite`` fetches
    it again). Otherwise the file is fetched from :func:`download_url` into
    ``CACHE/FILE.part`` with a progress bar on stderr; a transfer that breaks off is
    resumed from the bytes received (HTTP Range), up to :data:`DOWNLOAD_ATTEMPTS` times
    in one call and again by the next call, which finds the ``.part`` file. The file is
    renamed to ``CACHE/FILE`` only when complete and its sha256 matches; a complete file
    with another checksum is deleted.

    Raises:
        WeightsUnavailableError: no address known, server unreachable, HTTP error,
            transfer broken off (the ``.part`` is kept for the next try), checksum
            mismatch, cache folder not writable.
    """
    e = _entry(name, load_manifest())
    sha256 = (sha256 or (e.sha256 if e else None) or "").lower() or None
    if not overwrite:
        for p in _candidates(name)[1]:
            if sha256 is None or sha256_file(p) == sha256:
                return p  # installed: no network
    url = download_url(name, url)
    if not url:
        raise WeightsUnavailableError(f"no download address known for weights {name!r}",
                                      hint=f"pass one: tpn weights download {name} --url URL, "
                                           "or set TPN_WEIGHTS_URL to a mirror",
                                      code="WEIGHTS_NO_URL")
    dest = cache_dir() / (e.file if e else (name if Path(name).suffix else f"{name}.pt"))
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsUnavailableError(f"cannot create the cache folder ({exc.strerror})",
                                      path=dest.parent, hint="set TPN_CACHE_DIR to a writable folder",
                                      code="CACHE_NOT_WRITABLE") from exc
    retry = f"tpn weights download {name}" + (f" --url {url}" if url != download_url(name) else "")
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        before = part.stat().st_size if part.is_file() else 0
        try:
            _fetch(url, part, name, timeout, progress)
            break
        except _Interrupted as exc:
            after = part.stat().st_size if part.is_file() else 0
            if attempt == DOWNLOAD_ATTEMPTS or after <= before:  # no progress: stop trying
                raise WeightsUnavailableError(
                    f"download of {url} broke off: {exc}", path=part,
                    hint=f"run the same command again to resume from the {after} bytes kept: {retry}",
                    code="WEIGHTS_DOWNLOAD") from exc
        except urllib.error.HTTPError as exc:
            raise WeightsUnavailableError(
                f"download of {url} failed: the server answered {exc.code} {exc.reason}",
                path=dest, hint="check the address (the manifest's url, TPN_WEIGHTS_URL or --url); "
                                "offline, pass --weights PATH/TO/MODEL.tpn",
                code="WEIGHTS_DOWNLOAD") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise WeightsUnavailableError(
                f"cannot reach {url} ({reason})", path=dest,
                hint="check the network, or set TPN_WEIGHTS_URL to a reachable mirror (a folder "
                     "path works), or pass --weights PATH/TO/MODEL.tpn",
                code="WEIGHTS_DOWNLOAD") from exc
    # Hash the whole .part here, not while streaming: it may hold bytes from an earlier run.
    digest = sha256_file(part)
    if sha256 is not None and digest != sha256:
        size = part.stat().st_size
        part.unlink()  # resuming a wrong file cannot make it right
        raise WeightsUnavailableError(
            f"checksum mismatch: the file served by {url} is not {name!r} ({size} bytes, "
            f"sha256 {digest}, expected {sha256}); deleted it", path=part,
            hint="the server or mirror holds a damaged or different file: check the address "
                 "(--url / TPN_WEIGHTS_URL) and run the download again",
            code="WEIGHTS_CHECKSUM")
    os.replace(part, dest)
    return dest


def list_entries() -> list[dict[str, Any]]:
    """Manifest entries with where each one is (bundled / cache / missing), for display."""
    rows = []
    for e in load_manifest():
        path = find(e.name)
        where = "missing" if path is None else (
            "bundled" if path.parent.resolve() == bundled_dir().resolve() else "cache")
        row = {"name": e.name, "task": e.task, "file": e.file, "bytes": e.bytes,
               "sha256": e.sha256, "default": e.default, "where": where,
               "path": str(path) if path else None}
        row.update(e.extra)
        rows.append(row)
    return rows
