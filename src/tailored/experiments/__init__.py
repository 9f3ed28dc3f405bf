"""A/B experiments: sticky assignment by a keyed hash (`assignment`: numpy only, cheap to import for the service),
per-arm statistics, CUPED, the sample-ratio check and peeking-safe decisions (`statistics`), and the status the
service and the CLI report (`status`). Import from the modules."""
