"""Acceptance: tpn installed the way a user installs it, from a wheel.

A clean clone of the repository at HEAD (committed work only) is built into a wheel in
a fresh virtualenv that holds nothing but torch==2.13.0 and the build tools (the README's
install line, without the editable install); only that wheel and its dependencies are
installed; then, from /tmp, the README's demo command runs with absolute paths and
`tpn weights verify` checks every shipped model. The wheel must carry the compiled CPU
kernels and the weights, found inside the package.

Several minutes (torch into the venv, the kernels' compile, the dependencies, a 90-frame
run), so it has its own marker, outside the default run: `python -m pytest -q -m wheel`
(.ci/run runs it every time).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _cli_util import ROOT

pytestmark = pytest.mark.wheel

DEMO = "tpn colorize examples/cups_bw.mp4 --keyframes examples/cups_keys -o cups_color.mp4"


def _run(cmd, *, cwd=None, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run a command; on failure show its output (the build's log is the useful part)."""
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def test_wheel_from_clean_clone_runs_the_demo(tmp_path):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs the git repository: the wheel is built from a clean clone of HEAD")
    readme = (ROOT / "README.md").read_text()
    assert DEMO in readme, "the README's demo command changed: update DEMO here"

    # a clean clone of exactly this HEAD (cloning a worktree would check out another branch)
    head = _run(["git", "-C", ROOT, "rev-parse", "HEAD"]).stdout.strip()
    src = tmp_path / "src"
    _run(["git", "clone", "-q", "--no-checkout", ROOT, src])
    _run(["git", "-C", src, "checkout", "-q", head])

    # the environment of a new user: no editable install, no repository on the path, an
    # empty download cache, no weights folder override
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TPN_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(TPN_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="2")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    bin_ = venv / "bin"
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    pip = [bin_ / "python", "-m", "pip", "--disable-pip-version-check"]
    _run(pip + ["install", "-q", "torch==2.13.0", "setuptools", "wheel", "ninja"], env=env)
    dist = tmp_path / "dist"
    _run(pip + ["wheel", "-q", "--no-build-isolation", "--no-deps", "-w", dist, src], env=env)
    (wheel,) = dist.glob("tpn-*.whl")

    # the wheel carries the kernels and every shipped model with its manifest
    manifest = json.loads((src / "weights" / "manifest.json").read_text())["weights"]
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(re.fullmatch(r"tpn_cli/_C\..*\.so", n) for n in names), sorted(names)
    assert "tpn_cli/_weights/manifest.json" in names
    assert {f"tpn_cli/_weights/{e['file']}" for e in manifest} <= names

    _run(pip + ["install", "-q", wheel], env=env)
    tpn = bin_ / "tpn"
    site = _run([bin_ / "python", "-c", "import tpn_cli, sys; print(tpn_cli.__file__)"],
                cwd="/tmp", env=env).stdout.strip()
    assert site.startswith(str(venv)), f"tpn_cli imported from {site}, not the wheel"

    doctor = json.loads(_run([tpn, "doctor", "--json"], cwd="/tmp", env=env).stdout)
    assert doctor["backend"] == "compiled" and doctor["kernels_cpu"]
    assert doctor["weights_source"] == "package" and doctor["weights_dir"].startswith(str(venv))
    assert doctor["weights_present"] == doctor["weights_models"] == len(manifest)

    # the README's demo, from /tmp with absolute paths
    out = tmp_path / "cups_color.mp4"
    cmd = DEMO.replace("examples/", f"{src}/examples/").replace("cups_color.mp4", str(out)).split()
    _run([bin_ / cmd[0], *cmd[1:]], cwd="/tmp", env=env)
    import av

    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert (video.width, video.height) == (640, 360)
        assert sum(1 for _ in c.decode(video=0)) == 90
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1

    r = _run([tpn, "weights", "verify"], cwd="/tmp", env=env)
    for e in manifest:
        assert re.search(rf"^{re.escape(e['name'])}\b.*\bok\b", r.stdout, re.M), r.stdout
    # installed: asking for a download touches no network (nothing listens at port 9)
    r = _run([tpn, "weights", "download", "colour-v1", "-q"], cwd="/tmp",
             env=dict(env, TPN_WEIGHTS_URL="http://127.0.0.1:9"))
    assert r.stdout.strip().startswith(str(venv))
    assert not (tmp_path / "cache").exists()
