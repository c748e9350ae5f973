"""Models: guidance U-Net, the TPN module with its encoders/decoders, per-task heads,
switchable training modes (basic | switch | transpose), save/load.

    from tpn_cli.models import TPN, task_config, save_model, load_model
    model = TPN(task_config("colour", mode="switch"))
    u_tgt = model(u_key, v_key, v_tgt)                    # inference
    loss, parts, pred = model.pair_loss(u1, v1, u2, v2)   # training

Flow alignment, hold-back and blending at inference: tpn_cli/propagator.py.
"""
from .infer import align_key
from .io import load_model, save_model
from .tasks import (AB_SCALE, HDR_EPS, TASKS, colour_config, hdr_config, segment_config,
                    task_config)
from .tpn import MODES, TPN, TPNConfig
from .unet import GuidanceUNet

__all__ = ["align_key", "AB_SCALE", "HDR_EPS", "MODES", "TASKS", "TPN", "TPNConfig", "GuidanceUNet",
           "colour_config", "hdr_config", "segment_config", "task_config", "load_model",
           "save_model"]
