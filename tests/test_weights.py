"""Weights: manifest, name resolution, offline use, and downloads from a real HTTP server
on 127.0.0.1 (checksum, atomic write, clear exit-4 errors)."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
from functools import partial

import pytest

from _cli_util import models, one_thread, run_cli  # noqa: F401
from tpn_cli import weights
from tpn_cli.errors import UsageError, WeightsUnavailableError


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    bundled, cache = tmp_path / "weights", tmp_path / "cache"
    bundled.mkdir()
    monkeypatch.setenv("TPN_WEIGHTS_DIR", str(bundled))
    monkeypatch.setenv("TPN_CACHE_DIR", str(cache))
    return bundled, cache


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(bundled, entries):
    (bundled / "manifest.json").write_text(json.dumps({"weights": entries}))


def test_bundled_weights_resolve_offline(dirs, models):
    bundled, cache = dirs
    (bundled / "colour-v1.pt").write_bytes(models["colour"].read_bytes())
    _manifest(bundled, [{"name": "colour-v1", "file": "colour-v1.pt", "task": "colour",
                         "sha256": _sha(models["colour"]), "default": True,
                         "training_data": ["video/01_dog.mp4 (Apache-2.0)"], "scores": {"psnr": 1}}])
    assert weights.resolve(None, "colour") == bundled / "colour-v1.pt"
    assert weights.resolve("colour-v1", "colour") == bundled / "colour-v1.pt"
    assert weights.resolve(str(models["hdr"]), "hdr") == models["hdr"]
    model, path = weights.load(None, "colour")
    assert model.config.task == "colour"
    with pytest.raises(UsageError):
        weights.load("colour-v1", "hdr")
    with pytest.raises(WeightsUnavailableError, match="no hdr weights"):
        weights.resolve(None, "hdr")
    assert [r["status"] for r in weights.verify()] == ["ok"]
    code, out, _ = run_cli("weights", "list")
    assert code == 0 and "colour-v1" in out and "bundled" in out and "01_dog" in out
    code, out, _ = run_cli("weights", "path", "colour-v1")
    assert code == 0 and out.strip() == str(bundled / "colour-v1.pt")
    assert run_cli("weights", "verify")[0] == 0
    assert not cache.exists()  # nothing was fetched or written


def test_verify_detects_a_damaged_file(dirs, models):
    bundled, _ = dirs
    (bundled / "c.pt").write_bytes(models["colour"].read_bytes() + b"x")
    _manifest(bundled, [{"name": "c", "file": "c.pt", "task": "colour", "sha256": _sha(models["colour"])}])
    code, out, err = run_cli("weights", "verify")
    assert code == 4 and "mismatch" in out and "c" in err


def test_missing_weights_message(dirs):
    bundled, cache = dirs
    _manifest(bundled, [{"name": "colour-v1", "file": "colour-v1.pt", "task": "colour",
                         "url": "http://example.invalid/colour-v1.pt"}])
    code, _, err = run_cli("weights", "path", "colour-v1")
    assert code == 4 and "tpn weights download colour-v1" in err and str(cache) in err
    with pytest.raises(WeightsUnavailableError, match="not found"):
        weights.resolve(None, "colour")


def test_download_verifies_and_writes_atomically(dirs, server, models):
    bundled, cache = dirs
    base, www = server
    (www / "seg.pt").write_bytes(models["segment"].read_bytes())
    sha = _sha(models["segment"])
    _manifest(bundled, [{"name": "seg-v1", "file": "seg-v1.pt", "task": "segment",
                         "sha256": sha, "url": f"{base}/seg.pt"}])
    code, out, err = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 0, err
    assert out.strip() == str(cache / "seg-v1.pt") and _sha(cache / "seg-v1.pt") == sha
    assert weights.resolve(None, "segment") == cache / "seg-v1.pt"
    assert [p.name for p in cache.iterdir()] == ["seg-v1.pt"]
    # a name not in the manifest, with an explicit URL and checksum
    code, out, _ = run_cli("weights", "download", "extra", "--url", f"{base}/seg.pt", "--sha256", sha, "-q")
    assert code == 0 and (cache / "extra.pt").is_file()
    assert weights.resolve("extra", "segment") == cache / "extra.pt"


def test_download_failures_leave_nothing(dirs, server, models):
    bundled, cache = dirs
    base, www = server
    (www / "c.pt").write_bytes(models["colour"].read_bytes())
    _manifest(bundled, [{"name": "c", "file": "c.pt", "task": "colour", "sha256": "0" * 64,
                         "url": f"{base}/c.pt"}])
    code, _, err = run_cli("weights", "download", "c", "-q")
    assert code == 4 and "checksum mismatch" in err
    code, _, err = run_cli("weights", "download", "c", "--url", f"{base}/missing.pt", "-q")
    assert code == 4 and "404" in err
    code, _, err = run_cli("weights", "download", "nothing-known", "-q")
    assert code == 4 and "--url URL" in err
    assert not cache.exists() or list(cache.iterdir()) == []


def test_invalid_manifest(dirs):
    bundled, _ = dirs
    (bundled / "manifest.json").write_text("{not json")
    code, _, err = run_cli("weights", "list")
    assert code == 4 and "manifest.json" in err
