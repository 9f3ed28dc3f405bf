"""The Recommender (`recommender`, its settings in `settings`) and what it composes: trained users (`trained_users`,
with their events since training: `events`, and a vector index: `vectors`), new users (`cold_start`, `sessions`),
items known by their attributes (`new_items`), the stages (`ranking`) and the lists (`lists`); beside it, similar
and complementary items and trending items."""
