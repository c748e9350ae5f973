"""KeyPropagator: the one key-frame → frame prediction. The CLI's stream (engine.stream_from_keys,
batched and threaded) and one-frame calls (what the evaluation makes) give the same
images, for colour (flow-aligned, two keys blended, partly painted keys) and HDR."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _cli_util import DOG, one_thread  # noqa: F401
from tpn_cli import engine, keyframes
from tpn_cli.adapters import ColourAdapter, HdrAdapter
from tpn_cli.media import VideoReader
from tpn_cli.models import TPN, task_config
from tpn_cli.propagator import KeyPropagator


class Collect:
    def __init__(self):
        self.got = {}

    def write(self, frame, result):
        self.got[frame.index] = result


def _model(task: str) -> TPN:
    """A small flow-aligned TPN with random (non-zero) gates, so the scans do something."""
    torch.manual_seed(0)
    model = TPN(task_config(task, unet_base=4, unet_depth=2, hidden_channels=8, extra={"align": True}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _keys(task: str, frames: list[np.ndarray], keys: list[int]) -> dict[int, np.ndarray]:
    if task == "hdr":
        return {k: (frames[k].astype(np.float32) / 255.0) ** 2.2 * 2.0 for k in keys}
    out = {}
    for i, k in enumerate(keys):  # the second key painted on its left half only
        alpha = np.full(frames[k].shape[:2] + (1,), 255, np.uint8)
        if i == 1:
            alpha[:, frames[k].shape[1] // 2:] = 0
        out[k] = np.concatenate([frames[k], alpha], axis=2)
    return out


@pytest.mark.parametrize("task", ["colour", "hdr", "hdr_no_model"])
def test_stream_equals_one_frame_calls(task):
    frames = [f.image for f in VideoReader(DOG).frames()]
    n, keys, work = len(frames), [0, 6, 11], engine.work_shape(160, 90, 60)

    def adapter():
        if task.startswith("hdr"):
            return HdrAdapter(work, "cpu")
        return ColourAdapter(work, "cpu", flow_mix=ColourAdapter.FLOW_MIX, partial_keys=True)

    # hdr_no_model: `tpn hdr`'s default, each key's full-size map warped by the adapter
    model = None if task == "hdr_no_model" else _model(task)
    images = _keys(task.split("_")[0], frames, keys)
    sink = Collect()
    from tpn_cli.media.video import Frame

    stream = [Frame(i, f, i, i / 25) for i, f in enumerate(frames)]
    engine.stream_from_keys(frames=iter(stream), assignments=keyframes.iter_plan(n, keys, "blend"),
               propagator=KeyPropagator(adapter(), model), load_key=images.__getitem__,
               sinks=[sink], batch_size=3, key_feed=engine.KeyFrameFeed(lambda: iter(stream)),
               quiet=True)
    prop = KeyPropagator(adapter(), model)
    for k in keys:
        prop.set_key(k, images[k], frames[k])
    with torch.inference_mode():
        for a in keyframes.plan(n, keys, "blend"):
            one, got = prop.predict(a.frame, frames[a.frame], a.sources), sink.got[a.frame]
            if task == "colour":  # 8-bit output: the same image
                assert np.array_equal(one, got), a.frame
            else:  # float radiance: the stream batched other frames' keys with these
                np.testing.assert_allclose(one, got, rtol=1e-5, atol=1e-6, err_msg=str(a.frame))
    assert len(sink.got) == n
