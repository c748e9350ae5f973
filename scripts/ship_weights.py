"""Copy a trained model into weights/ and record it in weights/manifest.json.

    python scripts/ship_weights.py RUN/best.tpn NAME [--default] [--score key=value ...]

The manifest entry gets the file's sha256 and size, the task and training data stored in
the model file itself (so the licences travel with the weights), what use they allow
(non-commercial when a training source is CC BY-NC), the training iteration, and the
given validation scores. An entry of the same name is replaced.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tpn_cli.weights import release_url, sha256_file  # noqa: E402
LICENCES = {  # training source name -> licence, from ../shared/data/README.md
    **dict.fromkeys(["01_dog", "02_cups", "03_blocks", "04_coffee", "05_default_juggle",
                     "bedroom"], "Apache-2.0 (SAM 2 demo clips)"),
    **dict.fromkeys(["ferris", "v39"], "MIT"),
    **dict.fromkeys(["breakdance", "camel", "car-roundabout", "car-shadow", "cows", "dog",
                     "bmx-trees", "drift-chicane", "goat", "libby"], "CC BY-NC 4.0 (DAVIS)"),
    **dict.fromkeys(["CandleGlass", "Cannon", "Carrots", "Desk", "MtTamWest", "StillLife",
                     "Tree"], "BSD-3-Clause (OpenEXR sample images)"),
}
POLYHAVEN = "CC0 (Poly Haven)"  # the *_1k.hdr panoramas


def licence_of(source: str) -> str:
    """Licence of one training source (a clip, sequence or image name)."""
    if source.endswith("_1k"):
        return POLYHAVEN
    if source not in LICENCES:
        raise SystemExit(f"unknown training source {source!r}: add its licence to LICENCES")
    return LICENCES[source]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("name")
    parser.add_argument("--default", action="store_true", help="make it the task's default model")
    parser.add_argument("--score", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    payload = torch.load(args.model, map_location="cpu", weights_only=True)
    config, meta = payload["config"], payload.get("meta", {})
    task = config["task"]
    data = config.get("extra", {}).get("data", "")
    trained_on = re.findall(r"'([^']+)'", data.split(", val")[0])  # validation sources are not training data
    licences = sorted({licence_of(name) for name in trained_on})

    weights_dir = ROOT / "weights"
    weights_dir.mkdir(exist_ok=True)
    target = weights_dir / f"{args.name}.tpn"
    shutil.copyfile(args.model, target)
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"weights": []}
    entries = [e for e in manifest["weights"] if e["name"] != args.name]
    if args.default:
        for e in entries:
            if e.get("task") == task:
                e["default"] = False
    non_commercial = [lic for lic in licences if "-NC" in lic]
    entries.append({
        "name": args.name,
        "file": target.name,
        "task": task,
        "sha256": sha256_file(target),
        "bytes": target.stat().st_size,
        "default": args.default,
        # where `tpn weights download` fetches it: upload the file to the project's release
        "url": release_url(target.name),
        "training_data": data,
        "licences": licences,
        "use": ("non-commercial only: trained on data licensed " + ", ".join(non_commercial)
                if non_commercial else "any use allowed by the licences above"),
        "iteration": meta.get("iter"),
        "model": {k: config[k] for k in ("encoder", "scale", "residual", "mode", "hidden_channels") if k in config},
        "scores": {k: float(v) for k, v in (s.split("=", 1) for s in args.score)},
    })
    manifest["weights"] = sorted(entries, key=lambda e: (e["task"], e["name"]))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{target.relative_to(ROOT)}: {task}, {target.stat().st_size} bytes, licences {licences}")


if __name__ == "__main__":
    main()
