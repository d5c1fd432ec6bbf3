"""Training: the config (config.py), the loop (trainer.py), the run engine (run.py), schedules,
checkpoints, distributed launch. Import from the modules; this file stays empty so that
`import cnnkit` does not load torch (and the verb `cnnkit.train` keeps its name)."""
