"""The U-Net and its training: the model factory, losses and class
weights, the streamed input pipeline, and the training stage with its
checkpoints, early stopping and resume. TensorFlow is imported only when a
model is built or trained."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "training.train": ["run_training", "TrainResult"],
    "training.settings": ["TrainSettings"],
})
