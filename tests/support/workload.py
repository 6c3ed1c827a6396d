"""A mixed workload on one shared model: the concurrency test and the load benchmark run the same."""

from __future__ import annotations

import numpy as np

import vis_core


def mixed_requests(handle: vis_core.ModelHandle):
    """Six techniques (feature maps, prediction, Grad-CAM, saliency, guided backprop, filters) on
    four photos: ``(techniques by name, images by name, every (technique, image) pair)``."""
    images = {name: vis_core.sample_image(name) for name in ("chelsea", "coffee", "astronaut", "rocket")}

    def feature_maps(image):
        return vis_core.feature_maps(handle, image, ["features.4", "features.14"]).activations["features.14"]

    def predict(image):
        return np.array(vis_core.predict(handle, image).probabilities)

    def gradcam(image):
        return vis_core.attribute(handle, image, "gradcam", target=285).model_map

    def saliency(image):
        return vis_core.attribute(handle, image, "saliency", target=504).model_map

    def guided(image):
        return vis_core.project(handle, image, layer="features.7", channel=3, method="guided").model_map

    def filters(image):
        return vis_core.filters(handle, "features.0.0").weight

    techniques = {f.__name__: f for f in (feature_maps, predict, gradcam, saliency, guided, filters)}
    jobs = [(name, image) for name in techniques for image in images]
    return techniques, images, jobs
