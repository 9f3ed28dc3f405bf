"""Orchestration that the faces (CLI, service) call: tasks, run, tune, job specs."""
