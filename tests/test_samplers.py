"""Every named sampler builds from the model's own config and makes an image."""

import numpy as np
import pytest

from studio.samplers import SAMPLERS, make_scheduler


@pytest.fixture(scope="module")
def tiny_pipe(tiny_model_dir):
    from studio.models import ModelLibrary
    from studio.models.loading import load_pipeline

    pipe = load_pipeline(ModelLibrary(use_hf_cache=False).resolve(str(tiny_model_dir)), "cpu", "float32")
    pipe.set_progress_bar_config(disable=True)
    return pipe, dict(pipe.scheduler.config)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_builds_and_samples(name, tiny_pipe):
    import torch

    pipe, base = tiny_pipe
    scheduler = make_scheduler(name, base, seed=3)
    assert type(scheduler).__name__ == SAMPLERS[name].scheduler
    assert scheduler.config.beta_schedule == base["beta_schedule"]  # the model's own config
    if SAMPLERS[name].schedule_type == "Karras":
        assert scheduler.config.use_karras_sigmas
    pipe.scheduler = scheduler
    image = pipe("a dot", num_inference_steps=3, width=32, height=32, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (32, 32, 3) and np.isfinite(image).all()


def test_sde_noise_follows_the_seed(tiny_pipe):
    pipe, base = tiny_pipe
    assert make_scheduler("DPM++ SDE Karras", base, seed=11).noise_sampler_seed == 11
