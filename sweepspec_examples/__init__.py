"""Example objective functions for sweepspec sweeps.

Every objective follows sweepspec's contract ``fn(config, trial) -> dict | None``:

* :mod:`sweepspec_examples.toy` -- fast pure-Python objectives (tests, benchmarks);
* :mod:`sweepspec_examples.faulty` -- misbehaving objectives for failure-handling tests;
* :mod:`sweepspec_examples.mlp` -- a small torch MLP classifier (needs torch);
* :mod:`sweepspec_examples.classifier` -- a torch MLP on scikit-learn's bundled digits,
  reporting accuracy and latency (needs torch and scikit-learn);
* :mod:`sweepspec_examples.dqn` -- stable-baselines3's DQN on CartPole through
  :mod:`sweepspec.integrations.sb3` (needs stable-baselines3 and gymnasium);
* :mod:`sweepspec_examples.lora` -- LoRA fine-tuning of a tiny causal LM with transformers'
  Trainer and peft through :mod:`sweepspec.integrations.transformers`.

This package deliberately imports nothing heavy; each library is imported only by the module
that uses it. Only ``dqn`` and ``lora`` import sweepspec (its integrations).
"""
