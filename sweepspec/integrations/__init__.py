"""One-line reporting from training libraries (optional extras).

Each integration is a module of its own, imported by the objective that uses it; its library is
imported then, never by ``import sweepspec`` or ``import sweepspec.integrations``:

* :mod:`sweepspec.integrations.transformers` -- ``SweepspecCallback`` for a Hugging Face
  ``Trainer``: every evaluation reported, a clean stop when the scheduler says so;
* :mod:`sweepspec.integrations.sb3` -- ``SweepspecCallback`` for stable-baselines3: the mean
  episode reward every N steps, the model (and replay buffer) as the trial's checkpoint, and
  ``restore_model`` for resume and PBT.
"""

__all__: list[str] = []
