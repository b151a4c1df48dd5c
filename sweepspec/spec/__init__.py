"""The spec language as strict, frozen pydantic models (no backend, no YAML)."""

from sweepspec.spec.backend import MlflowTracking, OptunaBackend, RayBackend, Tracking
from sweepspec.spec.objective import Objective
from sweepspec.spec.root import FORMAT_VERSION, Spec
from sweepspec.spec.run_config import PerTrial, Resources, Stop, SweepStop, Trials
from sweepspec.spec.scheduler import (
    AshaScheduler,
    FifoScheduler,
    HyperbandScheduler,
    MedianScheduler,
    PbtScheduler,
)
from sweepspec.spec.searcher import Searcher
from sweepspec.spec.space import (
    ChoiceDist,
    GridDist,
    IntDist,
    LogUniformDist,
    Param,
    UniformDist,
    ValueLeaf,
    flatten_space,
)

__all__ = [
    "FORMAT_VERSION",
    "AshaScheduler",
    "ChoiceDist",
    "FifoScheduler",
    "GridDist",
    "HyperbandScheduler",
    "IntDist",
    "LogUniformDist",
    "MedianScheduler",
    "MlflowTracking",
    "Objective",
    "OptunaBackend",
    "Param",
    "PbtScheduler",
    "PerTrial",
    "RayBackend",
    "Resources",
    "Searcher",
    "Spec",
    "Stop",
    "SweepStop",
    "Tracking",
    "Trials",
    "UniformDist",
    "ValueLeaf",
    "flatten_space",
]
