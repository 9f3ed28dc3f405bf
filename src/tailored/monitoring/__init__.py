"""Monitoring: drift of the data and of the recommendations between trainings."""
