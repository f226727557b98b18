"""Everything that talks to Ray Tune, and the only package that imports Ray.

An experiment's lifecycle (storage, files, signals, reports when it ends), the ``Tuner``
of a sweep and its resume, the search algorithms and trial schedulers, resources and
clusters, the trainable adapter, Ray callbacks (progress, report refresh, checkpoint
budget, trackers). Importing this package loads no Ray: the modules that need it import
it when a sweep starts, so validating a spec never pays for Ray.
"""
