"""The engine's jobs on Spark DataFrames (the optional `spark` extra); nothing outside this package imports pyspark."""
