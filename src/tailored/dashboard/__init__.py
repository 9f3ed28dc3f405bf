"""The dashboard: pages of the monitoring snapshot, the model registry and the experiments, as server-rendered HTML
with SVG charts and no external resource (`pages`), their numbers as JSON (`numbers`), the session cookie of the
sign-in page (`session`). Served by the service at ``/dashboard``; `tailored monitor report` writes the same pages to
one static file."""
