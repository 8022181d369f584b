"""World v3's judges (bench/judges_v3.py, bench/object_parser.py) at the seams a retrain depends on: round trips
through the demo model's own autoencoder, the checker's shape labels on the components it finds, and weights files
of another design refused instead of half loaded."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "bench"))
import judges_v3  # noqa: E402
import object_parser  # noqa: E402
import world_scorers as ws  # noqa: E402

needs_files = pytest.mark.skipif(not (judges_v3.DEMO_MODEL.is_file() and judges_v3.WEIGHTS.is_file()),
                                 reason="v3 demo model or judges not committed on this checkout")


@needs_files
def test_round_trips_through_the_demo_models_own_autoencoder_keep_the_scene():
    data = judges_v3.render("test", judges_v3.TEST_FIRST, 6)
    trips = judges_v3.model_roundtrips(data["images"])
    assert trips.dtype == np.uint8 and trips.shape == data["images"].shape
    mse = ((trips.astype(np.float64) - data["images"]) / 255.0) ** 2
    assert -10 * np.log10(mse.mean()) > 25  # the v3 VAE gate is 28 dB on average; this is a smoke bound
    assert not np.array_equal(trips, data["images"])


@needs_files
def test_shape_labels_follow_the_object_under_each_found_component():
    judges = judges_v3.load()
    data = judges_v3.render("test", judges_v3.TEST_FIRST + 10, 4)
    x = ws.to_input(data["images"])
    ids = torch.from_numpy(data["ids"].astype(np.int64) + 1)
    shape_of = [[object_parser.SHAPES.index(o["shape"]) for o in objects] for objects in data["objects"]]
    masks, labels = object_parser.predicted_masks(judges.colour_net, x, ids, shape_of)
    assert len(masks) == sum(len(s) for s in shape_of)  # clean renders: one component per object
    for (b, mask), label in zip(masks, labels, strict=True):
        owner = int(torch.mode(ids[b][mask]).values) - 1
        assert label == shape_of[b][owner]


def test_a_weights_file_of_another_design_is_refused_not_half_loaded(tmp_path):
    path = tmp_path / "judges.safetensors"
    ws.save_nets(path, {"verifier.": judges_v3.SegmenterNetV3()}, {}, judges_v3.FORMAT)
    with pytest.raises(RuntimeError, match="verifier"):
        ws.load_nets(path, {"verifier.": judges_v3.PromptVerifierNet()}, judges_v3.FORMAT)


def test_a_file_with_nets_a_partial_retrain_left_untrained_is_refused(tmp_path):
    path = tmp_path / "judges.safetensors"
    nets = judges_v3._fresh_nets()
    ws.save_nets(path, nets, {"untrained": ["segmenter"]}, judges_v3.FORMAT)
    with pytest.raises(RuntimeError, match="segmenter never trained"):
        judges_v3.load(path)


@needs_files
def test_the_checker_is_bound_to_the_models_autoencoder_not_its_unet(tmp_path):
    from common import autoencoder_digest
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(judges_v3.DEMO_MODEL))
    assert judges_v3.load().info["parser_autoencoder_sha256"] == autoencoder_digest(judges_v3.DEMO_MODEL)
    unet_key = next(k for k in tensors if k.startswith("unet."))
    decoder_key = next(k for k in tensors if k.startswith("taesd_decoder."))
    continued = dict(tensors, **{unet_key: tensors[unet_key] + 1})  # a continued UNet, the same autoencoder
    save_file(continued, str(tmp_path / "continued.safetensors"))
    assert autoencoder_digest(tmp_path / "continued.safetensors") == autoencoder_digest(judges_v3.DEMO_MODEL)
    retuned = dict(tensors, **{decoder_key: tensors[decoder_key] * 1.01})  # another decoder: other decodes
    save_file(retuned, str(tmp_path / "retuned.safetensors"))
    assert autoencoder_digest(tmp_path / "retuned.safetensors") != autoencoder_digest(judges_v3.DEMO_MODEL)
