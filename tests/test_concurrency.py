"""Many sessions at once on one shared model: mixed techniques from 8 threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

import vis_core
from tests.support.workload import mixed_requests


def test_mixed_techniques_from_many_threads_match_single_thread(handle):
    techniques, images, jobs = mixed_requests(handle)
    reference = {(name, image): techniques[name](images[image]) for name, image in jobs}

    def one(index: int):
        name, image = jobs[(index * 7) % len(jobs)]  # interleave techniques across threads
        return (name, image), techniques[name](images[image])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(48)))
    for key, result in results:
        np.testing.assert_allclose(result, reference[key], rtol=1e-5, atol=1e-6, err_msg=str(key))
    assert vis_core.hook_count(handle.model) == 0
    assert all(p.grad is None for p in handle.model.parameters())
    assert all(not p.requires_grad for p in handle.model.parameters())
    assert vis_core.state_dict_hash(handle.model) == handle.state_hash
    assert all(m.inplace for m in handle.model.modules() if isinstance(m, torch.nn.ReLU6))  # restored
