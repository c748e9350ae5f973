"""Evaluation on held-out data, shared by scripts/eval_*.py and scripts/make_results.py
(which writes docs/RESULTS.md). A package beside tpn_cli, not installed with tpn (the
scripts put the repository root on sys.path): plans.py (schedules, (frame, key) pairs),
colour.py, segment.py, hdr.py (the methods below), tables.py (bins, means, markdown).

Colour (DAVIS held-out sequences)
    Key-frames every K frames (0, K, 2K, ...). A schedule assigns each other frame one
    key-frame (:func:`tpn_cli.keyframes.plan`): ``online`` = the nearest key-frame at or
    before it (the paper's online mode), ``nearest`` = the nearest on either side (ties to
    the earlier). Each method predicts the frame's ab from that key-frame; PSNR is on 8-bit
    RGB rebuilt with the frame's own L (key-frames excluded), style energy is
    :func:`tpn_cli.metrics.style_energy_ratio` (propagated ab variance / true). The
    prediction for frame t from key k does not depend on K or on the schedule, so every
    distinct (t, k) pair is computed once (:func:`colour_pairs`).
    Methods: ``copy`` (the key-frame's ab), ``flow`` (the key-frame's ab warped by OpenCV DIS
    flow, preset MEDIUM, computed between the frame's and the key-frame's L), and TPN models
    run exactly as `tpn colorize` runs them (:class:`tpn_cli.propagator.KeyPropagator`),
    scored on the RGB image the command writes.

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
