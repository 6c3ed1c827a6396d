"""Every forward hook the engine registers lives here, as a context manager.

``capture(model, layers)`` records the output of named modules during a forward pass and
removes its hooks in ``finally`` (so also after an exception). An in-place ReLU after a
module would overwrite what was captured, so while capturing, modules with an ``inplace``
flag (``nn.ReLU(inplace=True)``, ``ReLU6``, ``Dropout``...) run out of place; the flags are
restored in ``finally``. That costs the same memory as cloning but no extra copy. In-place
*functional* calls (``torch.relu_``) cannot be switched off: captured tensors can be cloned
(all, or the layers the index knows are overwritten), and ``Capture.overwritten()`` reports
any uncloned tensor that was modified after all, so the caller can redo the pass with clones.

Raising :class:`StopForward` from a hook ends the forward pass early, once every requested
layer has been seen: techniques never pay for the layers after the deepest one they read.

The model handle's guard removes, through :func:`removing_new_hooks`, any hook a technique
registered and forgot; :func:`hook_count` lets tests prove none is left.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import ParameterError


class StopForward(Exception):
    """Raised inside a hook to end a forward pass once the needed layers are captured."""


@dataclass
class Capture:
    """Outputs captured during one forward pass, by qualified module name.

    Attributes:
        outputs: the first output of each module (a reused module's later calls are counted
            in ``calls`` but not stored).
        calls: how many times each module ran.
        versions: each stored tensor's version counter when it was stored.
    """

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    cloned: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """Forget what was captured, to record the next forward pass with the same hooks."""
        self.outputs.clear()
        self.calls.clear()
        self.versions.clear()
        self.cloned.clear()

    def overwritten(self) -> list[str]:
        """Names whose stored (uncloned) tensor was modified in place after capture."""
        return [
            name
            for name, tensor in self.outputs.items()
            if name not in self.cloned and tensor._version != self.versions[name]
        ]


def resolve_modules(
    model: nn.Module, names: Sequence[str], modules: Mapping[str, nn.Module] | None = None
) -> dict[str, nn.Module]:
    """Map qualified names (as in ``named_modules()``) to modules, with a clear error."""
    modules = dict(model.named_modules()) if modules is None else modules
    resolved: dict[str, nn.Module] = {}
    for name in names:
        if name not in modules or name == "":
            raise ParameterError(f"Unknown layer {name!r}. {suggest(name, [n for n in modules if n])}")
        resolved[name] = modules[name]
    return resolved


def suggest(name: str, choices: Sequence[str]) -> str:
    """A 'did you mean' hint for an unknown name."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"Known names include {', '.join(repr(c) for c in list(choices)[:5])}..."


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


@contextmanager
def capture(
    model: nn.Module,
    layers: Sequence[str],
    *,
    clone: bool | Collection[str] = True,
    detach: bool = True,
    stop_when_done: bool = False,
    out_of_place: bool = True,
    modules: Mapping[str, nn.Module] | None = None,
) -> Iterator[Capture]:
    """Record the outputs of ``layers`` during the forward passes run inside the block.

    Args:
        model: the network.
        layers: qualified module names.
        clone: ``True`` to clone every captured tensor, ``False`` for none, or the set of
            names to clone (those overwritten in place later in the forward pass).
        detach: detach captured tensors from the autograd graph. Keep them attached
            (``detach=False, clone=False``) to take gradients with respect to them.
        stop_when_done: raise :class:`StopForward` once every layer has been captured.
        out_of_place: run modules that have an ``inplace`` flag out of place meanwhile.
        modules: ``dict(model.named_modules())`` if the caller has it (saves the walk).

    Yields:
        The :class:`Capture` being filled.
    """
    every_module = dict(model.named_modules()) if modules is None else modules
    targets = resolve_modules(model, layers, every_module)
    record = Capture()
    wanted = len(targets)
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def should_clone(name: str) -> bool:
        return clone if isinstance(clone, bool) else name in clone

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            record.calls[name] = record.calls.get(name, 0) + 1
            if name in record.outputs:
                return
            tensor = _first_tensor(output)
            if tensor is None:
                return
            if detach:
                tensor = tensor.detach()
            if should_clone(name):
                tensor = tensor.clone()
                record.cloned.add(name)
            record.outputs[name] = tensor
            record.versions[name] = tensor._version
            if stop_when_done and len(record.outputs) == wanted:
                raise StopForward

        return hook

    switched = _switch_off_inplace(every_module.values()) if out_of_place else []
    try:
        for name, module in targets.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield record
    finally:
        for handle in handles:
            handle.remove()
        for module in switched:
            module.inplace = True


def _switch_off_inplace(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Set ``inplace=False`` on every module that has it on; returns them for restoring."""
    switched = []
    for module in modules:
        if getattr(module, "inplace", False) is True:
            module.inplace = False
            switched.append(module)
    return switched


def run_forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor | None:
    """Call ``model(inputs)``; return ``None`` if a hook stopped it with StopForward."""
    try:
        return model(inputs)
    except StopForward:
        return None


#: The dicts, by hook id, in which ``nn.Module`` keeps a module's hooks. PyTorch has no public
#: way to list the hooks of a module, so :func:`removing_new_hooks` and :func:`hook_count` read them.
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


@contextmanager
def removing_new_hooks(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Remove every hook registered on ``modules`` inside the block, when it ends (also after an
    exception); hooks that were there before stay.

    Hook ids come from one counter shared by every module, so one set of the ids present at the
    start tells old hooks from new. A removed forward hook may leave its id in the module's
    options dicts (``with_kwargs``, ``always_call``): PyTorch reads those only for hooks still
    registered, and never reuses an id.
    """
    hook_dicts = [module.__dict__.get(kind, {}) for module in modules for kind in _HOOK_DICTS]
    before = {hook_id for hooks in hook_dicts for hook_id in hooks}
    try:
        yield
    finally:
        for hooks in hook_dicts:
            if hooks:
                for hook_id in [hook_id for hook_id in hooks if hook_id not in before]:
                    del hooks[hook_id]


def hook_count(model: nn.Module) -> int:
    """Number of hooks of any kind registered on ``model`` and its submodules."""
    total = 0
    for module in model.modules():
        for attribute in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_state_dict_hooks",
            "_load_state_dict_pre_hooks",
        ):
            total += len(getattr(module, attribute, {}))
    return total
