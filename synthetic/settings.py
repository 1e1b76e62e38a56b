"""How training images are composited from the pool: the settings that
own every default of synthesis, read by the window, the command line and
the loop."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserInputError


@dataclass
class SynthesisSettings:
    """Settings of compositing; defaults suit most photo folders."""

    count: int = 200               # images to make
    size: int = 256                # side of each square image, pixels
    seed: int = 0                  # same seed, same images
    objects_per_image: int = 0     # 0: the density auto-segmentation saw in the photos
    object_diameter: float = 32.0  # median object diameter in the images (0: keep each photo's scale)
    generated_share: float = 0.2   # share of images on generated backgrounds
    size_jitter: float = 0.25      # spread of object scale (log-normal sigma)
    contrast_jitter: float = 0.15  # relative spread of object contrast
    feather: float = 0.8           # softness of pasted edges, pixels
    seam_blur: bool = True         # slight blur across the seam
    max_overlap: float = 0.3       # largest share of a new object that may cover earlier ones
    fit_size: bool = False         # photos smaller than ``size``: smaller images instead of a refusal

    def check(self) -> None:
        if self.count <= 0:
            raise UserInputError(f"Number of synthetic images must be at least 1, not {self.count}")
        if self.count > 1_000_000:
            raise UserInputError(f"Number of synthetic images is absurd: {self.count}")
        if not 32 <= self.size <= 4096:
            raise UserInputError(f"Synthetic image size must lie between 32 and 4096 pixels, not {self.size}")
        if not 0 <= self.objects_per_image <= 1000:
            raise UserInputError(f"Objects per image must lie between 0 and 1000, not {self.objects_per_image}")
        if not (self.object_diameter == 0 or 4 <= self.object_diameter <= self.size):
            raise UserInputError(
                f"Object diameter must be 0 (keep scale) or between 4 and the image size, not {self.object_diameter}")
        if not 0.0 <= self.generated_share <= 1.0:
            raise UserInputError(f"Generated background share must lie between 0 and 1, not {self.generated_share}")
