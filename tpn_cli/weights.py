"""Model weights: the bundled files, the manifest, the download cache, name resolution.

Where weights live, searched in this order:

1. bundled: ``weights/`` next to the package (``$TPN_WEIGHTS_DIR`` overrides), described
   by ``weights/manifest.json``;
2. cache: ``$TPN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tpn``, else ``~/.cache/tpn``; filled
   by ``tpn weights download``.

Manifest (``weights/manifest.json``)::

    {"weights": [
      {"name": "colour-v1", "file": "colour-v1.pt", "task": "colour",
       "sha256": "<64 hex>", "bytes": 1234567, "default": true,
       "url": "https://.../colour-v1.pt",
       "training_data": ["video/01_dog.mp4 (Apache-2.0)", ...],
       "licence": "Apache-2.0", "scores": {"psnr_k10": 37.1}}
    ]}

``weights`` may also be an object keyed by name. Only ``name``/``file``/``sha256``
matter for finding and verifying a file; the rest is shown by ``tpn weights list``.
The default model of a task is the entry with ``"default": true``, else the first one
of that task.

Every failure is a :class:`~tpn_cli.errors.WeightsUnavailableError` (exit 4) whose
message says what is missing and the exact command that gets it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError, WeightsUnavailableError
from .media.atomic import temp_name

__all__ = ["WeightsEntry", "bundled_dir", "cache_dir", "download", "find", "load_manifest",
           "resolve", "sha256_file", "verify"]

MANIFEST = "manifest.json"
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


def bundled_dir() -> Path:
    """The folder of shipped weights: ``$TPN_WEIGHTS_DIR`` or ``<repo>/weights``."""
    env = os.environ.get("TPN_WEIGHTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights"


def cache_dir() -> Path:
    """Download cache: ``$TPN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tpn``, else ``~/.cache/tpn``."""
    env = os.environ.get("TPN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tpn"


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
                                      hint="restore it from the repository (git checkout weights/)",
                                      code="MANIFEST_INVALID") from exc


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
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


def find(name: str) -> Path | None:
    """The file of weights ``name`` (bundled first, then the cache), or None."""
    e = _entry(name, load_manifest())
    candidates = []
    if e is not None:
        candidates += [bundled_dir() / e.file, cache_dir() / e.file]
    candidates += [cache_dir() / name, cache_dir() / f"{name}.pt"]
    for p in candidates:
        if p.is_file():
            return p
    return None


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
    if e is not None and e.url:
        hint = f"run: tpn weights download {name}   (saves to {dest})"
    else:
        hint = (f"run: tpn weights download {name} --url URL   (saves to {dest}), "
                "or pass --weights PATH/TO/MODEL.pt")
    what = f"weights {name!r}" + (f" for {task}" if task else "")
    return WeightsUnavailableError(f"{what} not found in {bundled_dir()} or {cache_dir()}",
                                   hint=hint, code="WEIGHTS_MISSING")


def resolve(spec: str | None, task: str) -> Path:
    """The model file for ``--weights spec`` (a path or a name; None: the task's default).

    Raises:
        WeightsUnavailableError: nothing found; the message gives the download command.
    """
    if spec:
        p = Path(spec).expanduser()
        if p.is_file():
            return p
        if p.suffix or os.sep in spec:  # looks like a path, not a name
            raise WeightsUnavailableError("weights file not found", path=p,
                                          hint="check the path, or pass a name from "
                                               "`tpn weights list`", code="WEIGHTS_MISSING")
        found = find(spec)
        if found is None:
            raise _missing(spec, task)
        return found
    name = default_name(task)
    if name is None:
        raise WeightsUnavailableError(
            f"no {_norm_task(task)} weights are installed (no entry in {bundled_dir() / MANIFEST})",
            hint="pass --weights PATH/TO/MODEL.pt, or download them: tpn weights download NAME --url URL",
            code="WEIGHTS_MISSING")
    found = find(name)
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
        path = find(e.name)
        row: dict[str, Any] = {"name": e.name, "path": str(path) if path else None}
        if path is None:
            row["status"] = "missing"
        else:
            digest = sha256_file(path)
            row["sha256"] = digest
            if not e.sha256:
                row["status"] = "unchecked"
            else:
                row["status"] = "ok" if digest == e.sha256.lower() else "mismatch"
        out.append(row)
    return out


def download(name: str, url: str | None = None, sha256: str | None = None, *,
             progress: bool = True, timeout: float = 60.0, overwrite: bool = False) -> Path:
    """Download weights ``name`` into the cache, checking sha256, atomically.

    ``url`` and ``sha256`` default to the manifest's. The file is streamed to a hidden
    temporary next to the destination, hashed on the way, and renamed only when the
    checksum matches, so the cache never holds a partial or corrupt file.

    Raises:
        WeightsUnavailableError: no URL known, network/HTTP error, checksum mismatch,
            cache folder not writable.
    """
    e = _entry(name, load_manifest())
    url = url or (e.url if e else None) or os.environ.get("TPN_WEIGHTS_URL")
    sha256 = (sha256 or (e.sha256 if e else None) or "").lower() or None
    dest = cache_dir() / (e.file if e else (name if name.endswith(".pt") else f"{name}.pt"))
    if not url:
        raise WeightsUnavailableError(f"no download address known for weights {name!r}",
                                      hint=f"pass one: tpn weights download {name} --url URL",
                                      code="WEIGHTS_NO_URL")
    if dest.is_file() and not overwrite and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsUnavailableError(f"cannot create the cache folder ({exc.strerror})",
                                      path=dest.parent, hint="set TPN_CACHE_DIR to a writable folder",
                                      code="CACHE_NOT_WRITABLE") from exc
    tmp = temp_name(dest)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr,
                                            desc=name, disable=not progress, leave=False) as bar:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        if sha256 is not None and h.hexdigest() != sha256:
            raise WeightsUnavailableError(
                f"checksum mismatch for {url}: got sha256 {h.hexdigest()}, expected {sha256}",
                path=dest, hint="the download is damaged or the address serves another file; "
                                "retry, or use another --url", code="WEIGHTS_CHECKSUM")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise WeightsUnavailableError(f"download of {url} failed ({reason})", path=dest,
                                      hint="check the network and the address; retry with "
                                           f"tpn weights download {name} --url URL",
                                      code="WEIGHTS_DOWNLOAD") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
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
