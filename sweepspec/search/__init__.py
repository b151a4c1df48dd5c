"""The searcher core, the same for every backend: the evaluated space (conditions, derived
values, constraints, a trial's config), how parameters are suggested and read back, grids,
``try_first``, the feasible ask loop, warm start, the trial count, ``stop.trial``. Pure except
where a module says it builds Optuna objects (samplers, the ask loop, warm start)."""
