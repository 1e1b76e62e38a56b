"""How a model is trained: the settings stored in model.json with it."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserInputError

OPTIMIZERS = {"adam": 1e-3, "adadelta": 1.0}  # name -> default learning rate


@dataclass
class TrainSettings:
    """How a model is trained (stored in model.json with the model)."""

    epochs: int = 40
    batch_size: int = 8
    patch_size: int = 256  # side of the square training patches, a multiple of 2**depth
    learning_rate: float | None = None  # None: the optimiser's usual rate (adam 1e-3, adadelta 1.0)
    optimizer: str = "adam"  # "adam" or "adadelta"
    preset: str = "auto"  # "cpu", "gpu", or "auto" (gpu when TensorFlow sees one)
    depth: int | None = None  # overrides the preset
    base_filters: int | None = None  # overrides the preset
    precision: str = "float32"  # "float32" or "bfloat16" (mixed, weights stay float32)
    val_fraction: float = 0.1  # share of the images held out for validation (without a validation folder)
    seed: int = 0
    class_weighting: str = "sqrt"  # "median", "inverse", "sqrt" or "none" (see training.losses)
    max_class_weight_ratio: float = 50.0
    dice_weight: float = 0.5  # weight of the soft-Dice term added to the weighted cross-entropy
    patience: int = 8  # epochs without validation improvement before stopping early
    lr_patience: int = 3  # epochs without improvement before halving the learning rate
    augment: bool = True
    normalization: str = "auto"  # "auto" (from the image type), "percentile" or "detector"
    num_classes: int | None = None  # None: from the masks
    tile_size: int = 512  # tile side used at prediction time
    cache_mb: float = 1024.0  # memory for decoded training images

    def check(self) -> None:
        """Raise :class:`UserInputError` for absurd values."""
        if not 1 <= self.epochs <= 100_000:
            raise UserInputError(f"The number of epochs must be between 1 and 100000, not {self.epochs}")
        if not 1 <= self.batch_size <= 4096:
            raise UserInputError(f"The batch size must be between 1 and 4096, not {self.batch_size}")
        if not 16 <= self.patch_size <= 4096:
            raise UserInputError(f"The patch size must be between 16 and 4096 pixels, not {self.patch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise UserInputError(f"Unknown optimiser '{self.optimizer}' (choose {' or '.join(OPTIMIZERS)})")
        if self.learning_rate is not None and not 0 < self.learning_rate <= 10:
            raise UserInputError(f"The learning rate must be above 0 and at most 10, not {self.learning_rate}")
        if not 0 <= self.val_fraction < 1:
            raise UserInputError(f"The validation fraction must be between 0 and 1, not {self.val_fraction}")
        if self.normalization not in ("auto", "percentile", "detector"):
            raise UserInputError(f"Unknown normalisation '{self.normalization}' (auto, percentile or detector)")
        if self.preset not in ("auto", "cpu", "gpu"):
            raise UserInputError(f"Unknown model preset '{self.preset}' (auto, cpu or gpu)")
        if self.precision not in ("float32", "bfloat16"):
            raise UserInputError(f"Unknown precision '{self.precision}' (float32 or bfloat16)")
        if self.num_classes is not None and not 2 <= self.num_classes <= 16:
            raise UserInputError(f"The number of classes must be between 2 and 16, not {self.num_classes}")
