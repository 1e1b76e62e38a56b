"""The whole label-free loop run as one action: the pipeline (every stage
in order) and self-training rounds."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "loop.pipeline": ["run_pipeline", "PipelineResult"],
    "loop.refine": ["run_refine", "RefineResult"],
    "loop.settings": ["PipelineSettings", "RefineSettings"],
})
