"""A simulated world with hidden ground truth and the drivers that run policies in it (in process or over HTTP)."""
