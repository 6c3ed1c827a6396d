"""Activation and attribution maps: which pixels made the model choose a class?

Methods are registered by name in :data:`METHODS`, each with the facts a caller needs
(:class:`Method`: layer policy, signed or not, speed, how close a first picture is):

========================  ============================================  =================
name                      what                                          implemented by
========================  ============================================  =================
``cam``                   CAM (Zhou et al. 2016): ``sum_k w_ck A_k``    vis_core
``gradcam``               Grad-CAM (Selvaraju et al. 2017)              Captum LayerGradCam
``gradcam++``             Grad-CAM++ (Chattopadhay et al. 2018)         vis_core
``scorecam``              Score-CAM (Wang et al. 2020), batched         vis_core
``layercam``              Layer-CAM (Jiang et al. 2021)                 vis_core
``saliency``              |gradient| (Simonyan et al. 2014)             Captum Saliency
``smoothgrad``            SmoothGrad (Smilkov et al. 2017)              Captum NoiseTunnel
``integrated_gradients``  Integrated Gradients (Sundararajan 2017)      Captum, batched steps
``occlusion``             Occlusion (Zeiler & Fergus 2014)              Captum Occlusion
``guided_backprop``       guided backpropagation (Springenberg 2015)    vis_core
``guided_gradcam``        guided backprop x Grad-CAM                    vis_core + Captum
========================  ============================================  =================

Modules: :mod:`.registry` (what a method is and returns), :mod:`.cam` (the CAM family),
:mod:`.gradients` (gradient methods), :mod:`.occlusion`, :mod:`.api` (the verb).

Every method returns an :class:`Attribution` whose ``map`` is at the input image's resolution.
Score-CAM, occlusion and integrated gradients refine: :func:`attribute_stages` yields a first
picture within seconds, then better ones, and the exact map last.
"""

from . import cam, gradients, occlusion  # noqa: F401 - registers the methods
from .api import attribute, attribute_stages, attribute_tensor
from .cam import SCORECAM_BATCH, SCORECAM_FIRST
from .gradients import IG_COMPLETENESS, IG_FIRST, MAX_IG_STEPS, MAX_SMOOTHGRAD_SAMPLES
from .registry import (
    METHODS,
    Attribution,
    Method,
    RawMap,
    black,
    default_layer,
    resolve_target,
    scale,
)

__all__ = [
    "IG_COMPLETENESS",
    "IG_FIRST",
    "MAX_IG_STEPS",
    "MAX_SMOOTHGRAD_SAMPLES",
    "METHODS",
    "SCORECAM_BATCH",
    "SCORECAM_FIRST",
    "Attribution",
    "Method",
    "RawMap",
    "attribute",
    "attribute_stages",
    "attribute_tensor",
    "black",
    "default_layer",
    "resolve_target",
    "scale",
]
