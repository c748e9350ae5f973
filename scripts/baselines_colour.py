"""Colour baselines that `tpn colorize` must beat (issue 19): the two-key flow baseline
now lives in tpn_eval/colour_split.py (Frame, gray_L, warp_key, photometric_error,
two_key, rgb_of, BOX, SCALE); this module re-exports it for the scripts that import
``baselines_colour``."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import colour  # noqa: E402,F401 (scripts use bc.colour)
from tpn_eval.colour_split import (BOX, SCALE, Frame, gray_L, photometric_error, rgb_of, two_key,  # noqa: E402,F401
                                   warp_key)
