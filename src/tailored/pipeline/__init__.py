"""The Recommender and what it composes: cold start, new items, similar and complementary items, trending."""
