"""The engine's jobs on Spark DataFrames (the optional `spark` extra; nothing outside this package imports pyspark,
and these modules import it only when called). docs/spark.md: when to switch, the commands, cluster sizing.

```python
from tailored.spark import spark_session, read_interactions, check_quality, split_by_name, train_als, write_model_dir

spark = spark_session("local[*]")
rows = read_interactions(spark, "orders/", value_col="quantity", time_col="ordered_at")
train, test = split_by_name(check_quality(rows, QualityRules()).clean, "per_user", seed=42)  # data.quality.QualityRules
write_model_dir(train_als(train, factors=64, epochs=10), train, "models/als")   # tailored recommend / serve read it
```
"""

from tailored.spark.als import SparkFactors, train_als, weighted_interactions
from tailored.spark.generate import generate_interactions
from tailored.spark.io import read_interactions, write_frame
from tailored.spark.metrics import evaluate
from tailored.spark.model_dir import write_model_dir
from tailored.spark.neighbours import SparkNeighbours, item_neighbours, train_item_knn
from tailored.spark.popularity import SparkPopularity, daily_counts, item_popularity, train_popularity, trending_items
from tailored.spark.quality import QualityResult, check_quality
from tailored.spark.scoring import recommend_all, write_table
from tailored.spark.session import spark_session
from tailored.spark.split import split_by_name

__all__ = ["QualityResult", "SparkFactors", "SparkNeighbours", "SparkPopularity", "check_quality", "daily_counts",
           "evaluate", "generate_interactions", "item_neighbours", "item_popularity", "read_interactions",
           "recommend_all", "spark_session", "split_by_name", "train_als", "train_item_knn", "train_popularity",
           "trending_items", "weighted_interactions", "write_frame", "write_model_dir", "write_table"]
