"""Weights: manifest, name resolution, checksums at first use, the package's copy, and
downloads from a real HTTP server on 127.0.0.1 started by the tests (good file, wrong
checksum, connection dropped half-way then resumed, 404, connection refused, already
installed: no request)."""
from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from _cli_util import DOG, ROOT, extract_keys, models, one_thread, run_cli  # noqa: F401
from tpn_cli import weights
from tpn_cli.errors import UsageError, WeightsUnavailableError


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    bundled, cache = tmp_path / "weights", tmp_path / "cache"
    bundled.mkdir()
    monkeypatch.setenv("TPN_WEIGHTS_DIR", str(bundled))
    monkeypatch.setenv("TPN_CACHE_DIR", str(cache))
    monkeypatch.delenv("TPN_WEIGHTS_URL", raising=False)
    return bundled, cache


class Server:
    """Files served over HTTP on 127.0.0.1 with byte ranges (``Range: bytes=N-``), a log
    of every request, and a switch that cuts the connection after some bytes.

    ``drop_after[path] = [n1, n2, ...]``: the next responses for ``path`` announce the
    full length but close the connection after n1, then n2 ... bytes of the body.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold the server thread

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start, rng = 0, self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                drops = server.drop_after.get(self.path)
                if drops:
                    self.wfile.write(part[:drops.pop(0)])
                    self.close_connection = True
                    return
                self.wfile.write(part)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server():
    """A Server running in a thread for one test; it stops at the test's end, and by
    itself after 60 s whatever happens."""
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    timer = threading.Timer(60, srv.httpd.shutdown)
    timer.daemon = True
    timer.start()
    yield srv
    timer.cancel()
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join(5)


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


def _published(dirs, server, model: Path, name="seg-v1", task="segment"):
    """A manifest entry for ``model`` (not bundled) whose url points at the server."""
    bundled, _ = dirs
    server.files[f"/{name}.tpn"] = data = model.read_bytes()
    entry = {"name": name, "file": f"{name}.tpn", "task": task, "sha256": _sha(model),
             "bytes": len(data), "default": True, "url": f"{server.url}/{name}.tpn"}
    _manifest(bundled, [entry])
    return data


def test_download_good_file(dirs, server, models):
    _, cache = dirs
    data = _published(dirs, server, models["segment"])
    with pytest.raises(WeightsUnavailableError, match="tpn weights download seg-v1"):
        weights.resolve(None, "segment")
    code, out, err = run_cli("weights", "download", "seg-v1")
    assert code == 0, err
    assert out.strip() == str(cache / "seg-v1.tpn") and (cache / "seg-v1.tpn").read_bytes() == data
    assert "seg-v1" in err  # the progress bar, on stderr
    assert [p.name for p in cache.iterdir()] == ["seg-v1.tpn"]  # no .part left
    assert weights.resolve(None, "segment") == cache / "seg-v1.tpn"
    assert server.requests == [("/seg-v1.tpn", None)]
    # a name not in the manifest, with an explicit URL and checksum
    code, out, _ = run_cli("weights", "download", "extra", "--url", f"{server.url}/seg-v1.tpn",
                           "--sha256", _sha(models["segment"]), "-q")
    assert code == 0 and (cache / "extra.pt").read_bytes() == data
    assert weights.resolve("extra", "segment") == cache / "extra.pt"


def test_already_installed_makes_no_request(dirs, server, models):
    bundled, cache = dirs
    _published(dirs, server, models["segment"])
    (bundled / "seg-v1.tpn").write_bytes(models["segment"].read_bytes())  # bundled copy
    code, out, _ = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 0 and out.strip() == str(bundled / "seg-v1.tpn")
    (bundled / "seg-v1.tpn").unlink()
    cache.mkdir()
    (cache / "seg-v1.tpn").write_bytes(models["segment"].read_bytes())  # cached copy
    code, out, _ = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 0 and out.strip() == str(cache / "seg-v1.tpn")
    assert weights.resolve(None, "segment") == cache / "seg-v1.tpn"
    assert server.requests == []
    # --overwrite fetches it again
    assert run_cli("weights", "download", "seg-v1", "-q", "--overwrite")[0] == 0
    assert server.requests == [("/seg-v1.tpn", None)]


def test_download_wrong_checksum_is_refused(dirs, server, models):
    _, cache = dirs
    _published(dirs, server, models["segment"])
    server.files["/seg-v1.tpn"] = models["colour"].read_bytes()  # the server holds another file
    code, _, err = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 4 and "checksum mismatch" in err and "seg-v1.tpn" in err and "fix:" in err
    assert list(cache.iterdir()) == []  # neither the file nor a .part


def test_download_dropped_half_way_is_resumed(dirs, server, models, monkeypatch):
    _, cache = dirs
    data = _published(dirs, server, models["segment"])
    half = len(data) // 2
    # dropped once: the same call resumes from the bytes received
    server.drop_after["/seg-v1.tpn"] = [half]
    code, out, err = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 0, err
    assert server.requests == [("/seg-v1.tpn", None), ("/seg-v1.tpn", f"bytes={half}-")]
    assert (cache / "seg-v1.tpn").read_bytes() == data
    # dropped on every try: exit 4, the .part kept, and the next call resumes it
    (cache / "seg-v1.tpn").unlink()
    server.requests.clear()
    monkeypatch.setattr(weights, "DOWNLOAD_ATTEMPTS", 2)
    server.drop_after["/seg-v1.tpn"] = [1000, 1000]
    code, _, err = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 4 and "broke off" in err and "seg-v1.tpn.part" in err and "resume" in err
    assert (cache / "seg-v1.tpn.part").read_bytes() == data[:2000]
    assert weights.find("seg-v1") is None  # an incomplete file is never used
    code, out, err = run_cli("weights", "download", "seg-v1", "-q")
    assert code == 0, err
    assert server.requests[-1] == ("/seg-v1.tpn", "bytes=2000-")
    assert (cache / "seg-v1.tpn").read_bytes() == data
    assert [p.name for p in cache.iterdir()] == ["seg-v1.tpn"]


def test_download_resume_when_part_is_complete_or_server_ignores_range(dirs, server, models):
    _, cache = dirs
    data = _published(dirs, server, models["segment"])
    cache.mkdir()
    (cache / "seg-v1.tpn.part").write_bytes(data)  # interrupted just before the rename
    assert run_cli("weights", "download", "seg-v1", "-q")[0] == 0
    assert server.requests == [("/seg-v1.tpn", f"bytes={len(data)}-")]  # answered 416
    assert (cache / "seg-v1.tpn").read_bytes() == data
    # a mirror given as a plain folder (file://): no ranges, the whole file again
    (cache / "seg-v1.tpn").unlink()
    (cache / "seg-v1.tpn.part").write_bytes(data[:10])
    mirror = cache.parent / "mirror"
    mirror.mkdir()
    (mirror / "seg-v1.tpn").write_bytes(data)
    code, _, err = run_cli("weights", "download", "seg-v1", "-q", env={"TPN_WEIGHTS_URL": str(mirror)})
    assert code == 0, err
    assert (cache / "seg-v1.tpn").read_bytes() == data and len(server.requests) == 1


def test_download_404_and_no_network(dirs, server, models):
    _, cache = dirs
    _published(dirs, server, models["segment"])
    code, _, err = run_cli("weights", "download", "seg-v1", "--url", f"{server.url}/missing.tpn", "-q")
    assert code == 4 and "404" in err and "missing.tpn" in err and "fix:" in err
    # $TPN_WEIGHTS_URL replaces the manifest's address: base + file name
    code, _, err = run_cli("weights", "download", "seg-v1", "-q",
                           env={"TPN_WEIGHTS_URL": f"{server.url}/mirror/"})
    assert code == 4 and "404" in err and server.requests[-1] == ("/mirror/seg-v1.tpn", None)
    # nothing listening: connection refused
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run_cli("weights", "download", "seg-v1", "-q", env={"TPN_WEIGHTS_URL": f"http://127.0.0.1:{port}"})
    assert code == 4 and "cannot reach" in err and "TPN_WEIGHTS_URL" in err and "--weights PATH" in err
    code, _, err = run_cli("weights", "download", "nothing-known", "-q")
    assert code == 4 and "--url URL" in err
    assert not cache.exists() or list(cache.iterdir()) == []


def test_damaged_or_truncated_file_is_refused_at_first_use(dirs, models):
    bundled, cache = dirs
    good = models["colour"].read_bytes()
    _manifest(bundled, [{"name": "c", "file": "c.tpn", "task": "colour", "sha256": _sha(models["colour"]),
                         "bytes": len(good), "default": True}])
    cache.mkdir()
    (cache / "c.tpn").write_bytes(good[:1000])
    keys = extract_keys(DOG, cache.parent / "keys", [0])
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--tpn", "-o", cache.parent / "out.mp4")
    assert code == 4 and "truncated (1000 of" in err and str(cache / "c.tpn") in err
    assert "tpn weights download c --overwrite" in err
    (bundled / "c.tpn").write_bytes(good[::-1])  # a damaged bundled copy is passed over for the good one
    (cache / "c.tpn").write_bytes(good)
    assert weights.resolve(None, "colour") == cache / "c.tpn"
    (cache / "c.tpn").unlink()
    with pytest.raises(WeightsUnavailableError, match="damaged") as info:
        weights.resolve("c", "colour")
    assert str(bundled / "c.tpn") in str(info.value) and "TPN_WEIGHTS_DIR" in str(info.value)


def test_shipped_manifest_has_release_urls():
    entries = weights.load_manifest(ROOT / "weights")
    assert entries
    for e in entries:
        assert e.url == weights.release_url(e.file) and e.url.startswith("https://")
        assert e.sha256 and e.bytes == (ROOT / "weights" / e.file).stat().st_size


def test_bundled_folder_is_found_from_any_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("TPN_WEIGHTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    # run from the repository: its weights/, whatever the working directory
    assert weights.bundled_location() == (ROOT / "weights", "source checkout")
    n = len(weights.load_manifest(ROOT / "weights"))
    code, out, _ = run_cli("doctor")
    assert code == 0 and f"weights: {ROOT / 'weights'} (source checkout): {n} of {n} models present" in out
    # installed (a wheel): the package's own _weights/ comes first
    # (tests/test_wheel.py checks this on a real wheel)
    pkg = tmp_path / "site-packages" / "tpn_cli"
    (pkg / weights.PACKAGE_WEIGHTS).mkdir(parents=True)
    (pkg / weights.PACKAGE_WEIGHTS / "manifest.json").write_text((ROOT / "weights" / "manifest.json").read_text())
    monkeypatch.setattr(weights.importlib.resources, "files", lambda package: pkg)
    assert weights.bundled_location() == (pkg / weights.PACKAGE_WEIGHTS, "package")


def test_invalid_manifest(dirs):
    bundled, _ = dirs
    (bundled / "manifest.json").write_text("{not json")
    code, _, err = run_cli("weights", "list")
    assert code == 4 and "manifest.json" in err
