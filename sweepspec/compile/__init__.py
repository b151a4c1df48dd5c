"""Spec -> backend plan. Compilers are pure: they build descriptions and objects, run nothing."""
