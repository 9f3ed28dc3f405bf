"""The improvement loop: read new events, check them, retrain a candidate, evaluate it against the champion on a
fresh frozen sample, canary it through an experiment, then promote or roll back (`tailored loop`)."""
