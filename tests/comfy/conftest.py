"""Fixtures for tests that drive the real ComfyUI (see tests/harness.py)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/ itself, for `harness`; appended on purpose
import harness  # noqa: E402

FAMILIES = ("sd15", "sd21", "sdxl", "flux", "chroma")  # every family whose attention the pack reads


@pytest.fixture(scope="session")
def comfy_env(tmp_path_factory):
    """ComfyUI imported in this process (CPU), the LoTTS pack and the test pack loaded.
    `.pack` is the pack module as ComfyUI loaded it; `.run(prompt)` executes an API-format graph."""
    import torch

    # one thread unless told otherwise: on a shared 2-core machine two make tiny-model steps ~10x slower
    torch.set_num_threads(int(os.environ.get("LOTTS_TEST_THREADS", "1")))
    return harness.start_in_process(tmp_path_factory.mktemp("comfy"))


@pytest.fixture(scope="session")
def models_dir(comfy_env):
    return comfy_env.models_dir


@pytest.fixture(scope="session")
def tiny(comfy_env):
    """tiny(family) -> (MODEL, CLIP, VAE) built from ComfyUI's classes with seeded weights."""
    return comfy_env.test_pack.tiny_models.tiny_family


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    server = harness.ComfyServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param
