"""Evaluation on held-out data, shared by scripts/eval_*.py and scripts/make_results.py
(which writes docs/RESULTS.md). A package beside tpn_cli, not installed with tpn (the
scripts put the repository root on sys.path): plans.py (schedules, (frame, key) pairs),
colour_split.py, colour.py, segment.py, hdr.py (the methods below), tables.py (bins, means,
markdown).

Colour (issue 19's protocol, colour_split.py: docs/RESULTS.md's colour section)
    A split declared before measuring (:data:`colour_split.SPLITS`): ``tune`` (the DAVIS
    clips the colour work was tuned on) and ``heldout`` (four other DAVIS clips and four
    ProPainter clips, never trained or tuned on), the first 81 frames of each clip,
    key-frames every K frames from 0. Frames: the pairs (t, t+1) with t ≡ 0 (mod 8) and,
    at K ≥ 20, every pair where the feeding key-frames change. PSNR on 8-bit RGB rebuilt
    with the frame's own L (key-frames excluded); temporal warping error = the output's
    flow-compensated frame-to-frame chroma change over the ground truth's, over all pairs,
    at the method's key changes and elsewhere. Methods: ``baseline`` (issue 19's two-key
    flow baseline: both neighbouring keys warped by OpenCV DIS, preset MEDIUM, at full
    resolution, weighted per pixel by exp(−e/8) / (|t − k| + 1), e the 9×9 box mean of
    |warped key L − frame L| in 8-bit L) and ``product:MODE[:tpn]`` (what
    `tpn colorize --mode MODE [--tpn]` writes, built by the command's own
    ColourTask.adapter with its defaults and the shipped weights).
    colour.py (scripts/eval_colour.py, eval_suggest.py): the older per-(frame, key) pairs
    of copy, DIS flow and TPN models under the online / nearest schedules.

Segmentation (DAVIS protocol, first-frame mask only)
    ``copy`` (the first mask everywhere), ``flow_first`` (the first mask warped to each
    frame by DIS flow computed directly between the two), ``flow_chain`` (the mask warped
    frame to frame by DIS flow), a TPN from the first frame
    (:meth:`tpn_cli.propagator.KeyPropagator.propagate`), or a TPN chained frame to frame
    (:class:`tpn_cli.mask_tracker.MaskPropagator`). J, F, J&F with first and last frame
    excluded (:func:`tpn_cli.metrics.evaluate_davis_sequence`).

HDR (held-out pseudo-video)
    A virtual camera pans, zooms and rolls smoothly over a held-out HDR still
    (:func:`hdr_sequence`, settings :data:`HDR_SETTINGS`); the LDR stream has one
    exposure (a share of the first frame's values clip), one random camera curve,
    per-frame noise and 8-bit quantisation, as the training pairs
    (tpn_cli.train.hdr_video). Key-frames carry the true radiance; each K is a separate
    run. Methods: ``icc`` (the inverse camera curve with the default parameters, a camera
    we do not know), the nearest key-frame's radiance copied (``copy_sat``) or warped by
    flow (``flow_sat``) into the frame's saturated pixels (LDR channel max ≥ 0.95; generic
    f⁻¹(LDR) elsewhere); ``flow_sat_cal`` the same with f⁻¹ the response fitted to the
    run's key-frames (:mod:`tpn_cli.camera_response`); ``flow_two_cal`` issue 19's two-key
    baseline (:func:`two_key_flow`) with that response; with the clip's true curve,
    ``icc_true``, ``flow_sat_true``, ``flow_two_true`` (the issue's baselines, given the
    true curve). ``tpn``: the default `tpn hdr` (both neighbouring keys flow-aligned and
    fused per channel with the frame's f⁻¹, :mod:`tpn_cli.hdr_fusion`, no network),
    ``tpn_net``: the same with the HDR TPN on each aligned key (`tpn hdr --tpn`).
    log-RMSE (whole frame, saturated and unsaturated pixels) and PU21-PSNR
    (1.0 = 203 cd/m²).
"""
from .colour import (ColourPairResult, colour_frame_values, colour_summary, evaluate_colour_pairs,
                     evaluate_colour_sequence)
from .hdr import (HDR_SAT_LEVEL, HDR_SETTINGS, HDR_SPLIT, evaluate_hdr_clip, evaluate_hdr_sequence, hdr_clip_rng,
                  hdr_sequence, hdr_summary, two_key_flow)
from .plans import SCHEDULES, assign_keys, blends_of, colour_pairs, key_frames, keys_of
from .segment import evaluate_segment_sequence, segment_method
from .tables import DISTANCE_BINS, bin_by_distance, distance_bin, fmt, markdown_table, mean

__all__ = [
    "DISTANCE_BINS", "SCHEDULES", "key_frames", "assign_keys", "keys_of", "colour_pairs", "distance_bin",
    "bin_by_distance", "fmt", "markdown_table", "mean", "ColourPairResult", "evaluate_colour_pairs",
    "evaluate_colour_sequence", "colour_summary", "colour_frame_values", "blends_of", "segment_method",
    "evaluate_segment_sequence", "hdr_sequence", "evaluate_hdr_sequence", "evaluate_hdr_clip", "hdr_clip_rng",
    "hdr_summary", "HDR_SAT_LEVEL", "HDR_SETTINGS", "HDR_SPLIT", "two_key_flow",
]
