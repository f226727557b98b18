"""What works on an experiment directory: where it lives (a directory or a URI), its
checkpoints and its Optuna study, and the commands on a finished experiment (confirm,
extend, warm start, export, predict) with the record of what it grew from. No Ray.
"""
