"""Example objective functions for sweepspec sweeps.

Every objective follows sweepspec's contract ``fn(config, trial) -> dict | None``:

* :mod:`sweepspec_examples.toy` -- fast pure-Python objectives (tests, benchmarks);
* :mod:`sweepspec_examples.faulty` -- misbehaving objectives for failure-handling tests;
* :mod:`sweepspec_examples.mlp` -- a small torch MLP classifier (needs torch);
* :mod:`sweepspec_examples.dqn` -- a compact DQN on CartPole (needs torch and gymnasium).

This package deliberately imports nothing heavy; torch and gymnasium are imported
only by the modules that use them. None of these modules import sweepspec.
"""
