"""The `tailored benchmark ...` commands: figures on public data and on the service, never asserts on time."""
