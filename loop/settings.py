"""What the pipeline and the self-training rounds run with. Each owns the
defaults of the loop itself (more synthetic images than Create synthetic
data makes, the epochs a round adds); every other default is the stage's
own. A light module: the window reads these defaults at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from training.settings import TrainSettings

if TYPE_CHECKING:
    from inference.confident import Sureness


def _sureness():
    from inference.confident import Sureness

    return Sureness()


@dataclass
class PipelineSettings:
    """What the pipeline runs with; every other default is the stage's own
    (AutosegSettings, SynthesisSettings, TrainSettings)."""

    epochs: int = field(default_factory=lambda: TrainSettings().epochs)
    synthetic_count: int = 400         # the loop's own: twice Create synthetic data's, for its figures
    synthetic_size: int = 256          # as SynthesisSettings
    polarity: str = "auto"
    seed: int = 0
    train: object = None               # a training.train.TrainSettings to use instead of the defaults


@dataclass
class RefineSettings:
    epochs: int = 15               # training epochs added per round
    synthetic_count: int = 400
    synthetic_size: int = 256
    sureness: Sureness = field(default_factory=_sureness)  # which objects the model is sure of
    retire_below: float = 0.2      # auto objects the model gives less than this are retired
    seed: int = 0
