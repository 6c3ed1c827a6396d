"""Image parameterisations for gradient ascent (Olah et al. 2017, "Feature Visualization").

An :class:`ImageParam` holds a batch of images as learnable tensors, either plain pixels or
a Fourier (FFT) basis with 1/f frequency scaling, optionally in decorrelated colour space;
calling it gives the images in [0, 1] through a sigmoid.
"""

from __future__ import annotations

import torch

# Colour correlation of ImageNet photos (the square root of its covariance), as used by Olah
# et al. and lucent: optimising in this basis decorrelates the colour channels.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class ImageParam(torch.nn.Module):
    """A batch of images as learnable parameters; ``forward()`` gives ``(B, C, H, W)`` in [0, 1].

    ``image = sigmoid(colour_mix(raw))``, where ``raw`` is the pixels, or with ``fft`` the
    inverse FFT of a spectrum scaled by 1/frequency, divided by 4.
    """

    def __init__(
        self,
        batch: int,
        size: int | tuple[int, int],
        *,
        channels: int = 3,
        fft: bool = True,
        decorrelate: bool = True,
        generator: torch.Generator,
        scale: float = 0.01,
    ) -> None:
        super().__init__()
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.fft = fft
        self.decorrelate = decorrelate and channels == 3
        self.register_buffer("colour", _COLOR_SQRT.clone(), persistent=False)
        if fft:
            fy = torch.fft.fftfreq(self.height)[:, None]
            fx = torch.fft.rfftfreq(self.width)[None, :]
            frequencies = torch.sqrt(fx**2 + fy**2)
            self.register_buffer(
                "spectrum_scale", 1.0 / frequencies.clamp_min(1.0 / max(self.height, self.width)), persistent=False
            )
            shape = (batch, channels, self.height, self.width // 2 + 1, 2)  # real and imaginary parts
            self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=generator) * scale)
        else:
            shape = (batch, channels, self.height, self.width)
            self.pixels = torch.nn.Parameter(torch.randn(shape, generator=generator) * scale)

    def forward(self) -> torch.Tensor:
        if self.fft:
            spectrum = torch.view_as_complex(self.spectrum) * self.spectrum_scale
            raw = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho") / 4.0
        else:
            raw = self.pixels
        if self.decorrelate:
            raw = self._mix(raw)
        return torch.sigmoid(raw)

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        """Mix the channels (dimension 1) of ``x`` by the colour matrix, as one matmul."""
        return torch.matmul(self.colour, x.reshape(x.shape[0], x.shape[1], -1)).view(x.shape)
