"""The layer index: every module that returns a tensor, found by one dry forward pass.

Each entry (:class:`LayerInfo`) carries the qualified name as in ``named_modules()``, the output
shape, the parameter count, the execution order, the top-level block it belongs to, and what a
capture of it must take care of (in-place operations that overwrite it later, and plain
``nn.Sequential`` containers whose output is their last child's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import ModelError
from .hooks import capture

if TYPE_CHECKING:
    from .models import ModelHandle

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerInfo:
    """One entry of a model's layer index.

    Attributes:
        name: qualified module name, as in ``named_modules()`` (e.g. ``features.10``).
        type_name: the module's class name.
        output_shape: output shape of the first call, without the batch dimension.
        params: number of parameters of the module and its children.
        order: position in execution order during the dry forward pass.
        block: the top-level block the layer belongs to (itself, for a block).
        is_block: whether it is a block: the first module below the root that is not a
            plain container (``Sequential``/``ModuleList``/``ModuleDict``).
        calls: how many times the module runs per forward pass (a reused ReLU runs several).
        overwritten_in_place: whether a later in-place operation modifies its output even
            with in-place modules switched off (an in-place functional call such as
            ``torch.relu_``): captures must clone it.
        needs_out_of_place: whether a later module with an ``inplace`` flag
            (``nn.ReLU(inplace=True)`` after a BatchNorm...) modifies its output: a capture of
            it must run such modules out of place. Captures of other layers need not, and
            save the extra memory traffic.
        alias_of: for a plain ``nn.Sequential`` (forward not overridden), the descendant
            whose output *is* its output (its last child, resolved recursively): capturing
            that one captures both, with one hook instead of two.
    """

    name: str
    type_name: str
    output_shape: tuple[int, ...]
    params: int
    order: int
    block: str
    is_block: bool
    calls: int = 1
    overwritten_in_place: bool = False
    needs_out_of_place: bool = False
    alias_of: str | None = None

    @property
    def channels(self) -> int:
        """Number of channels (first non-batch dimension), 1 for scalars."""
        return self.output_shape[0] if self.output_shape else 1

    @property
    def is_spatial(self) -> bool:
        """Whether the output is a (C, H, W) feature map."""
        return len(self.output_shape) == 3

    @property
    def shape_text(self) -> str:
        """The output shape as ``64×14×14``."""
        return "×".join(str(s) for s in self.output_shape)


def _block_names(model: nn.Module) -> dict[str, str]:
    """Map every module name to its block (first non-container module below the root)."""
    blocks: dict[str, str] = {}

    def walk(module: nn.Module, prefix: str, block: str | None) -> None:
        for child_name, child in module.named_children():
            name = f"{prefix}.{child_name}" if prefix else child_name
            child_block = block
            if child_block is None and type(child) not in _CONTAINERS:
                child_block = name
            blocks[name] = child_block or name
            walk(child, name, child_block)

    walk(model, "", None)
    return blocks


def build_layer_index(handle: ModelHandle) -> dict[str, LayerInfo]:
    """Index every module that returns a tensor, from one dry forward pass on zeros."""
    model = handle.model
    names = [name for name, _ in model.named_modules() if name]
    blocks = _block_names(model)
    modules = dict(model.named_modules())
    height, width = handle.input_size
    dry_input = torch.zeros(1, handle.input_channels, height, width, device=handle.device)
    order: dict[str, int] = {}

    def record_order(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            order.setdefault(name, len(order))

        return hook

    with handle.guard(), torch.no_grad():
        order_hooks = [modules[name].register_forward_hook(record_order(name)) for name in names]
        try:
            with capture(model, names, clone=False) as record:
                model(dry_input)
            overwritten = set(record.overwritten())
            with capture(model, names, clone=False, out_of_place=False) as in_place_record:
                model(dry_input)
            overwritten_by_modules = set(in_place_record.overwritten()) - overwritten
        except Exception as exc:
            raise ModelError(
                f"A test forward pass of {handle.name} on a {handle.input_channels}x{height}x{width} input failed: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from exc
        finally:
            for hook in order_hooks:
                hook.remove()

    aliases = _sequential_aliases(modules, set(record.outputs))
    index: dict[str, LayerInfo] = {}
    for name in sorted(record.outputs, key=lambda n: order[n]):
        module = modules[name]
        index[name] = LayerInfo(
            name=name,
            type_name=type(module).__name__,
            output_shape=tuple(record.outputs[name].shape[1:]),
            params=sum(parameter.numel() for parameter in module.parameters()),
            order=order[name],
            block=blocks.get(name, name),
            is_block=blocks.get(name) == name and type(module) not in _CONTAINERS,
            calls=record.calls.get(name, 1),
            overwritten_in_place=name in overwritten,
            needs_out_of_place=name in overwritten_by_modules,
            alias_of=aliases.get(name),
        )
    return index


def _sequential_aliases(modules: dict[str, nn.Module], captured: set[str]) -> dict[str, str]:
    """Map each plain Sequential to the descendant that produces its output."""
    aliases: dict[str, str] = {}

    def resolve(name: str) -> str | None:
        module = modules[name]
        if not isinstance(module, nn.Sequential) or type(module).forward is not nn.Sequential.forward:
            return None
        children = [child for child, _ in module.named_children()]
        if not children:
            return None
        last = f"{name}.{children[-1]}" if name else children[-1]
        if last not in captured:
            return None
        return resolve(last) or last

    for name in captured:
        target = resolve(name)
        if target is not None:
            aliases[name] = target
    return aliases


#: Plain names for how deep a block is, shallow to deep: what its filters typically respond to
#: (Zeiler & Fergus's and Olah et al.'s reading of ImageNet classifiers; a rule of thumb, not a
#: measurement of this model).
STAGES = ("edges and colours", "textures", "patterns", "parts of objects", "objects")
#: The stage of blocks after the last spatial one (pooled vectors, the classifier).
ANSWER_STAGE = "the answer"


@dataclass(frozen=True)
class Depth:
    """How deep a block is, in words a non-programmer reads.

    Attributes:
        position: 1-based position among the model's blocks that give maps, in execution order.
        count: how many such blocks the model has.
        stage: one of :data:`STAGES`, or :data:`ANSWER_STAGE` after the last spatial block.
        relative: 0 (first spatial block) to 1 (last); 1 after the spatial blocks.
    """

    position: int
    count: int
    stage: str
    relative: float

    @property
    def text(self) -> str:
        """``block 11 of 21: parts of objects``."""
        return f"block {self.position} of {self.count}: {self.stage}"


def depths(index: Mapping[str, LayerInfo]) -> dict[str, Depth]:
    """The plain depth of every layer of a layer index (a sub-layer gets its block's).

    A block's relative depth is the mean of two measures, each 0 at the first spatial block and 1
    at the last: its rank among the spatial blocks, and how far its maps have shrunk (on a log
    scale, from the first block's size to the smallest map larger than 1x1). The second puts
    blocks of one resolution together (all of ResNet's stem reads "edges and colours"); the first
    spreads a network whose maps never shrink. The relative depth never falls along the blocks,
    so the stages run shallow to deep. Blocks after the last spatial one are :data:`ANSWER_STAGE`.
    """
    blocks = [info for info in index.values() if info.is_block and len(info.output_shape) in (1, 3)]
    spatial = [info for info in blocks if info.is_spatial]
    last_spatial = max((info.order for info in spatial), default=-1)
    sizes = [info.output_shape[1] * info.output_shape[2] for info in spatial]
    first = sizes[0] if sizes else 1
    smallest = min((size for size in sizes if size > 1), default=first)
    span = math.log(first / smallest) if first > smallest else 0.0
    result: dict[str, Depth] = {}
    highest = 0.0
    rank = 0
    for position, info in enumerate(blocks, start=1):
        if info.is_spatial and info.order <= last_spatial:
            by_rank = rank / (len(spatial) - 1) if len(spatial) > 1 else 1.0
            size = sizes[rank]
            by_size = min(1.0, math.log(first / size) / span) if span and size > 1 else (1.0 if size <= 1 else by_rank)
            highest = max(highest, (by_rank + max(0.0, by_size)) / 2)
            stage = STAGES[min(len(STAGES) - 1, int(highest * len(STAGES)))]
            rank += 1
        else:
            highest, stage = 1.0, ANSWER_STAGE if info.order > last_spatial else STAGES[-1]
        result[info.name] = Depth(position, len(blocks), stage, highest)
    for name, info in index.items():
        if name not in result and info.block in result:
            result[name] = result[info.block]
    return result
