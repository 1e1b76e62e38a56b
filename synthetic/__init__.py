"""Training images with exact labels: photos composited from the object
pool onto backgrounds made from the user's photos, and simulated CCD
detector frames with exact per-class masks."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "synthetic.compose": ["run_synthesize", "SynthesisResult"],
    "synthetic.settings": ["SynthesisSettings"],
    "synthetic.ccd": ["run_simulate_ccd", "render_frame", "simulate_frame", "CCDResult"],
    "synthetic.ccd_settings": ["CCDSettings", "load_ccd_settings"],
})
