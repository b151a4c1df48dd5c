"""sweepspec: declarative, YAML-driven hyperparameter sweeps on Optuna or Ray Tune.

``import sweepspec`` is light: it imports neither ray, optuna nor torch.
"""

from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.load import LoadedSpec, load_spec, load_text
from sweepspec.spec import Spec
from sweepspec.trial import Checkpoint, Trial, TrialStopped

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "LoadedSpec",
    "Location",
    "Problem",
    "Spec",
    "SweepspecError",
    "Trial",
    "TrialStopped",
    "__version__",
    "load_spec",
    "load_text",
]
