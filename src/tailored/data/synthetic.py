"""A synthetic retail data set with the patterns the engine is meant to find (and a few errors to catch).

Customers (age, gender, segment, region) fill baskets over two years. Built in:

- **segment preferences**: each segment favours some categories (families buy baby products, gourmets the
  delicatessen), and every customer has a few staple products bought again and again, so personal history beats
  global popularity;
- **time of day and weekday**: baskets lean to evenings on weekdays and mornings/afternoons at weekends; coffee and
  croissants sell mostly in the morning, wine, beer and ready meals in the evening;
- **seasons**: Christmas products (foie gras, champagne, gingerbread, yule log) sell only from 20 November to
  6 January, summer products (ice cream, sunscreen, iced tea, strawberries, charcoal) only in June-August;
- **complements**: spaghetti and pasta sauce, tortilla chips and salsa, toothbrush and toothpaste, cereal and milk,
  foie gras and champagne share baskets (``basket_id``);
- **heavy tails**: lognormal activity per customer, plus one extreme buyer with ``EXTREME_PURCHASES`` (569)
  purchases of sparkling water;
- **malformed rows** (``malformed=True``): two rows without item id, one negative quantity, two non-numeric
  quantities (so the ``value`` column then has **object dtype**, numbers and strings mixed, as read from a dirty
  CSV), one exact duplicate row, one timestamp in 2099 and one unknown product id.

Views (``event_type="view"``, value 1) come from the same preferences, shortly before the basket's purchases.

With ``context_effects=True`` every basket also carries the ``device`` (desktop, mobile) and ``channel`` (web, app,
email) it was made on, and they change what is bought, as the weekend does (`DEVICE_PREFERENCES`,
`CHANNEL_PREFERENCES`, `WEEKEND_PREFERENCES`: category weights multiplying the segment, daypart and season ones):
snacks and drinks on mobile, household and baby products on desktop, the delicatessen from an email, fresh produce
in the app, delicatessen and drinks at weekends: the planted effect a context-aware ranker must learn. The
customers, their baskets and the baskets' days and hours are those of ``context_effects=False``; the products (and
so the rows) differ.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tailored.data.columns import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.io import write_table
from tailored.data.retail_catalogue import CATEGORY_PREFERENCES, PRODUCT_TEMPLATES, VARIANTS
from tailored.errors import ConfigError

logger = logging.getLogger(__name__)

BASKET_ID = "basket_id"
REGION = "region"
PURCHASE, VIEW = "purchase", "view"
EXTREME_PURCHASES = 569
EXTREME_ITEM_TITLE = "Sparkling water"
FUTURE_TIMESTAMP = int(pd.Timestamp("2099-06-01", tz="UTC").timestamp())
_MALFORMED_ROWS = 8

SEGMENTS = ("family", "student", "gourmet", "health", "budget")
SEGMENT_SHARES = (0.30, 0.15, 0.15, 0.20, 0.20)
SEGMENT_AGE = {"family": (38, 7), "student": (22, 2.5), "gourmet": (52, 11), "health": (41, 12), "budget": (47, 17)}
REGIONS = ("north", "south", "east", "west", "capital")
REGION_SHARES = (0.18, 0.22, 0.15, 0.17, 0.28)
SEASONS = ("all_year", "christmas", "summer")
DAYPARTS = ("morning", "afternoon", "evening")
DAYPART_HOURS = ((7, 12), (12, 17), (17, 22))
DAYPART_SHARES = {"weekday": (0.30, 0.25, 0.45), "weekend": (0.35, 0.45, 0.20)}
WEEKDAY_WEIGHTS = (0.12, 0.11, 0.12, 0.13, 0.16, 0.22, 0.14)  # Monday .. Sunday
DEVICE, CHANNEL = "device", "channel"
DEVICES, DEVICE_SHARES = ("desktop", "mobile"), (0.55, 0.45)
CHANNELS, CHANNEL_SHARES = ("web", "app", "email"), (0.60, 0.25, 0.15)
DEVICE_PREFERENCES = {"desktop": {"Household": 2.5, "Baby": 2.5, "Grocery": 1.5, "Snacks": 0.4},
                      "mobile": {"Snacks": 3.0, "Beverages": 2.5, "Frozen": 2.0, "Household": 0.3, "Baby": 0.3}}
CHANNEL_PREFERENCES = {"web": {}, "app": {"Fresh": 2.5, "Frozen": 0.5},
                       "email": {"Delicatessen": 5.0, "Personal care": 3.0, "Grocery": 0.4}}
WEEKEND_PREFERENCES = {"Delicatessen": 2.5, "Beverages": 2.0, "Household": 0.4, "Personal care": 0.5}
CONTEXT_EFFECTS = len(DEVICES) * len(CHANNELS) * 2
"""(device, channel, weekend) combinations: index ``(device * len(CHANNELS) + channel) * 2 + weekend``."""
@dataclass(frozen=True)
class RetailData:
    """Interactions (``user_id, item_id, value, timestamp, event_type, basket_id, region``), customers, products, and
    the planted complementary pairs (``item_id, complement_item_id``: the ground truth of `tailored complementary`)."""

    interactions: pd.DataFrame
    customers: pd.DataFrame
    products: pd.DataFrame
    complements: pd.DataFrame

    def write(self, directory: str | Path) -> Path:
        """Write ``interactions.csv``, ``customers.csv``, ``products.csv`` and ``complements.csv`` into
        ``directory``."""
        directory = Path(directory)
        for name in ("interactions", "customers", "products", "complements"):
            write_table(getattr(self, name), directory / f"{name}.csv")
        return directory


def generate_retail(
    n_customers: int = 2000,
    n_products: int = 500,
    start: str = "2024-01-01",
    days: int = 730,
    seed: int = 42,
    malformed: bool = True,
    context_effects: bool = False,
) -> RetailData:
    """Generate the retail data set; the same arguments give identical frames. ``context_effects`` adds the
    ``device`` and ``channel`` columns and their planted effect (module docstring).

    ``n_products`` must be at least ``len(PRODUCT_TEMPLATES)`` (one product per template; the rest are variants such
    as "Organic Spaghetti"). The default size gives about 100k interactions in well under a second.
    """
    if n_products < len(PRODUCT_TEMPLATES):
        raise ConfigError(
            f"n_products={n_products} is too small: use at least {len(PRODUCT_TEMPLATES)} (one per template)."
        )
    if n_customers < 1 or days < 1:
        raise ConfigError(f"n_customers and days must be positive, got n_customers={n_customers}, days={days}.")
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start, tz="UTC")
    products, template = _products(n_products, rng)
    customers = _customers(n_customers, rng)
    effects = np.random.default_rng([seed, 1]) if context_effects else None
    rows = _baskets(customers, products, template, origin, days, rng, effects)
    extreme = _extreme_buyer(len(customers), products, origin, days, rng, next_basket=rows[BASKET_ID].max() + 1)
    rows = pd.concat([rows, extreme.assign(**({DEVICE: DEVICES[0], CHANNEL: CHANNELS[0]} if effects else {}))])
    rows = rows.sort_values([TIMESTAMP, BASKET_ID], kind="stable", ignore_index=True)
    frame = pd.DataFrame(
        {
            USER_ID: customers[USER_ID].to_numpy()[rows["customer"].to_numpy()],
            ITEM_ID: products[ITEM_ID].to_numpy()[rows["product"].to_numpy()],
            VALUE: rows[VALUE].to_numpy(np.float64),
            TIMESTAMP: rows[TIMESTAMP].to_numpy(np.int64),
            EVENT_TYPE: np.where(rows["is_view"].to_numpy(), VIEW, PURCHASE),
            BASKET_ID: rows[BASKET_ID].to_numpy(np.int64),
            REGION: customers[REGION].to_numpy()[rows["customer"].to_numpy()],
        }
        | ({DEVICE: rows[DEVICE].to_numpy(), CHANNEL: rows[CHANNEL].to_numpy()} if effects else {})
    )
    if malformed:
        frame = _with_malformed_rows(frame, products, rng)
    logger.info("generated retail data customers=%d products=%d rows=%d seed=%d", n_customers, n_products, len(frame),
                seed)
    paired = products["complement"].to_numpy() >= 0
    ids = products[ITEM_ID].to_numpy()
    partners = ids[products["complement"].to_numpy()[paired]]
    complements = pd.DataFrame({ITEM_ID: ids[paired], "complement_item_id": partners})
    return RetailData(frame, customers, products.drop(columns=["daypart", "complement"]), complements)


def product_dayparts(products: pd.DataFrame) -> pd.Series:
    """The planted daypart (morning, evening, any) of each generated product, by item id: its template's, read from
    its title (a variant's title is the variant's name, a space, then the template's title)."""
    dayparts = {title: daypart for title, *_, daypart, _ in PRODUCT_TEMPLATES}
    prefixes = tuple(f"{name} " for name, _ in VARIANTS)
    titles = [title.removeprefix(next((p for p in prefixes if title.startswith(p)), "")) for title in products["title"]]
    return pd.Series([dayparts[title] for title in titles], index=products[ITEM_ID].to_numpy(), name="daypart")


def _products(n_products: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The catalogue (one product per template, then variants) and each product's template index."""
    templates = pd.DataFrame(
        list(PRODUCT_TEMPLATES),
        columns=["title", "category", "sub_category", "price", "tags", "season", "daypart", "complement"],
    )
    extra = n_products - len(templates)
    template = np.concatenate([np.arange(len(templates)), rng.integers(0, len(templates), extra)])
    variant = np.concatenate([np.full(len(templates), -1), rng.integers(0, len(VARIANTS), extra)])
    variant_names = np.array([name for name, _ in VARIANTS] + [""], dtype=object)[variant]
    variant_factors = np.array([factor for _, factor in VARIANTS] + [1.0])[variant]
    table = templates.iloc[template].reset_index(drop=True)
    is_variant = variant >= 0
    title = table["title"].to_numpy(dtype=object)
    tags = table["tags"].to_numpy(dtype=object)
    title[is_variant] = variant_names[is_variant] + " " + title[is_variant].astype(str)
    variant_tags = pd.Series(variant_names[is_variant]).str.lower().str.replace(" ", "-").to_numpy()
    tags[is_variant] = tags[is_variant] + "|" + variant_tags
    price = np.round(table["price"].to_numpy() * variant_factors * rng.uniform(0.9, 1.1, n_products), 2)
    width = max(5, len(str(n_products + 1)))
    products = pd.DataFrame(
        {
            ITEM_ID: [f"P{i:0{width}d}" for i in range(1, n_products + 1)],
            "title": title.astype(str),
            "category": table["category"].to_numpy(),
            "sub_category": table["sub_category"].to_numpy(),
            "price": price,
            "price_range": pd.cut(price, [0.0, 2.5, 8.0, np.inf], labels=["low", "medium", "high"]).astype(str),
            "tags": tags.astype(str),
            "seasonal": table["season"].to_numpy() != "all_year",
            "season": table["season"].to_numpy(),
            "daypart": table["daypart"].to_numpy(),
            # complement: the template product of the complement title (index in the catalogue), -1 when none
            "complement": pd.Index(templates["title"]).get_indexer(table["complement"]),
        }
    )
    return products, template


def _customers(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    segment = rng.choice(len(SEGMENTS), n_customers, p=SEGMENT_SHARES)
    mean, spread = np.array([SEGMENT_AGE[name] for name in SEGMENTS]).T
    age = np.clip(np.round(rng.normal(mean[segment], spread[segment])), 18, 90).astype(np.int64)
    width = max(5, len(str(n_customers)))
    return pd.DataFrame(
        {
            USER_ID: [f"C{i:0{width}d}" for i in range(1, n_customers + 1)],
            "age": age,
            "gender": rng.choice(np.array(["F", "M", "X"]), n_customers, p=[0.51, 0.47, 0.02]),
            "segment": np.array(SEGMENTS)[segment],
            REGION: rng.choice(np.array(REGIONS), n_customers, p=REGION_SHARES),
        }
    )


def _preference_weights(products: pd.DataFrame, template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Item weights for every (segment, daypart, season) context, shape (contexts, products)."""
    popularity = rng.lognormal(0.0, 1.0, len(products)) * np.where(template == np.arange(len(products)), 3.0, 1.0)
    category = products["category"].to_numpy()
    segment_weight = np.array([[CATEGORY_PREFERENCES[s].get(c, 1.0) for c in category] for s in SEGMENTS])
    daypart = products["daypart"].to_numpy()
    daypart_weight = np.array([np.select([daypart == part, daypart == "any"], [4.0, 1.0], 0.08) for part in DAYPARTS])
    season = products["season"].to_numpy()
    season_weight = np.array([np.select([season == "all_year", season == name], [1.0, 6.0], 0.0) for name in SEASONS])
    return (
        popularity
        * segment_weight[:, None, None, :]
        * daypart_weight[None, :, None, :]
        * season_weight[None, None, :, :]
    ).reshape(-1, len(products))


def _context_weights(weights: np.ndarray, products: pd.DataFrame) -> np.ndarray:
    """``weights`` times each (device, channel, weekend) combination's category weights: row ``context *
    CONTEXT_EFFECTS + effect``."""
    category = products["category"].to_numpy()

    def by_category(preferences: dict[str, float]) -> np.ndarray:
        return np.array([preferences.get(name, 1.0) for name in category])

    effect = np.array([by_category(DEVICE_PREFERENCES[device]) * by_category(CHANNEL_PREFERENCES[channel])
                       * by_category(WEEKEND_PREFERENCES if weekend else {})
                       for device in DEVICES for channel in CHANNELS for weekend in (False, True)])
    return (weights[:, None, :] * effect[None, :, :]).reshape(-1, len(category))


def _cumulative(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, axis=1)
    return cdf / cdf[:, -1:]


def _sample(cdf: np.ndarray, context: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One product per row, drawn from row ``context``'s distribution (rows of ``cdf`` offset to stay sorted)."""
    n_products = cdf.shape[1]
    offset = (cdf + np.arange(len(cdf))[:, None]).ravel()
    position = np.searchsorted(offset, context + rng.random(len(context)), side="right")
    return np.minimum(position - context * n_products, n_products - 1)


def _season_of(moments: pd.DatetimeIndex) -> np.ndarray:
    month_day = moments.month.to_numpy() * 100 + moments.day.to_numpy()
    christmas = (month_day >= 1120) | (month_day <= 106)
    summer = (month_day >= 601) & (month_day <= 831)
    return np.where(christmas, 1, np.where(summer, 2, 0))


def _baskets(
    customers: pd.DataFrame,
    products: pd.DataFrame,
    template: np.ndarray,
    origin: pd.Timestamp,
    days: int,
    rng: np.random.Generator,
    effects: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Basket rows: customer, product, value, timestamp, is_view, basket_id (and device, channel when ``effects``
    draws them)."""
    n_customers, n_products = len(customers), len(products)
    segment = pd.Index(SEGMENTS).get_indexer(customers["segment"])
    weights = _preference_weights(products, template, rng)
    cdf = _cumulative(weights)

    # baskets: who, which day (weekday pattern), which part of the day, which season
    activity = rng.lognormal(np.log(8.0), 0.9, n_customers)
    basket_customer = np.repeat(np.arange(n_customers), rng.poisson(activity))
    n_baskets = len(basket_customer)
    weekday = (origin.day_of_week + np.arange(days)) % 7
    day_weight = np.asarray(WEEKDAY_WEIGHTS)[weekday]
    day = rng.choice(days, n_baskets, p=day_weight / day_weight.sum())
    weekend = weekday[day] >= 5
    daypart = np.where(
        weekend,
        _categorical(rng, DAYPART_SHARES["weekend"], n_baskets),
        _categorical(rng, DAYPART_SHARES["weekday"], n_baskets),
    )
    hours = np.asarray(DAYPART_HOURS)
    seconds = day * 86400 + rng.integers(hours[daypart, 0] * 3600, hours[daypart, 1] * 3600)
    basket_time = int(origin.timestamp()) + seconds
    season = _season_of(pd.to_datetime(basket_time, unit="s"))
    context = (segment[basket_customer] * len(DAYPARTS) + daypart) * len(SEASONS) + season

    # purchases (some from the customer's staples), their complements, and views before the purchase
    purchases = 1 + rng.poisson(1.8, n_baskets)
    views = rng.poisson(1.5, n_baskets)
    sizes = purchases + views
    basket = np.repeat(np.arange(n_baskets), sizes)
    position = np.arange(len(basket)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    is_view = position >= np.repeat(purchases, sizes)
    if effects is None:
        product = _sample(cdf, context[basket], rng)
    else:
        device = effects.choice(len(DEVICES), n_baskets, p=DEVICE_SHARES)
        channel = effects.choice(len(CHANNELS), n_baskets, p=CHANNEL_SHARES)
        effect = (device * len(CHANNELS) + channel) * 2 + weekend
        product = _sample(_cumulative(_context_weights(weights, products)),
                          (context * CONTEXT_EFFECTS + effect)[basket], rng)
    staples = _staples(cdf, segment, products, rng)
    use_staple = ~is_view & (rng.random(len(basket)) < 0.35)
    which_staple = rng.integers(0, staples.shape[1], use_staple.sum())
    product[use_staple] = staples[basket_customer[basket[use_staple]], which_staple]
    complement = products["complement"].to_numpy()[product]
    add = ~is_view & (complement >= 0) & (rng.random(len(basket)) < 0.6)
    basket = np.concatenate([basket, basket[add]])
    product = np.concatenate([product, complement[add]])
    is_view = np.concatenate([is_view, np.zeros(add.sum(), bool)])

    # one row per (basket, product, event type); quantities; timestamps within the visit
    _, first = np.unique((basket * n_products + product) * 2 + is_view, return_index=True)
    basket, product, is_view = basket[first], product[first], is_view[first]
    bulky = np.isin(products["category"].to_numpy()[product], ["Beverages", "Baby"])
    quantity = np.where(is_view, 1, 1 + rng.poisson(np.where(bulky, 0.9, 0.3)))
    offset = np.where(is_view, -rng.integers(60, 1800, len(basket)), rng.integers(0, 600, len(basket)))
    return pd.DataFrame(
        {
            "customer": basket_customer[basket],
            "product": product,
            VALUE: quantity.astype(np.float64),
            TIMESTAMP: basket_time[basket] + offset,
            "is_view": is_view,
            BASKET_ID: basket + 1,
        }
        | ({} if effects is None else {DEVICE: np.array(DEVICES)[device[basket]],
                                        CHANNEL: np.array(CHANNELS)[channel[basket]]})
    )


def _categorical(rng: np.random.Generator, shares: tuple[float, ...], size: int) -> np.ndarray:
    return rng.choice(len(shares), size, p=shares)


def _staples(
    cdf: np.ndarray, segment: np.ndarray, products: pd.DataFrame, rng: np.random.Generator, count: int = 4
) -> np.ndarray:
    """``count`` products each customer buys again and again: all-year, any-time favourites of their segment."""
    everyday = (products["season"].to_numpy() == "all_year") & (products["daypart"].to_numpy() == "any")
    probabilities = np.diff(cdf, axis=1, prepend=0.0) * everyday
    restricted = np.cumsum(probabilities, axis=1)
    restricted /= restricted[:, -1:]
    context = np.repeat(segment * len(DAYPARTS) * len(SEASONS), count)  # segment's all-year morning row
    return _sample(restricted, context, rng).reshape(len(segment), count)


def _extreme_buyer(
    n_customers: int,
    products: pd.DataFrame,
    origin: pd.Timestamp,
    days: int,
    rng: np.random.Generator,
    next_basket: int,
) -> pd.DataFrame:
    """One customer buying the same sparkling water ``EXTREME_PURCHASES`` times."""
    item = int(np.flatnonzero(products["title"].to_numpy() == EXTREME_ITEM_TITLE)[0])
    moments = rng.integers(0, days, EXTREME_PURCHASES) * 86400 + rng.integers(8 * 3600, 20 * 3600, EXTREME_PURCHASES)
    return pd.DataFrame(
        {
            "customer": np.full(EXTREME_PURCHASES, rng.integers(n_customers)),
            "product": np.full(EXTREME_PURCHASES, item),
            VALUE: np.ones(EXTREME_PURCHASES),
            TIMESTAMP: int(origin.timestamp()) + moments,
            "is_view": np.zeros(EXTREME_PURCHASES, bool),
            BASKET_ID: next_basket + np.arange(EXTREME_PURCHASES),
        }
    )


def _with_malformed_rows(frame: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Add copies of ordinary purchase rows, each broken in one way, next to their originals in time order."""
    ordinary = products.loc[~products["seasonal"] & (products["title"] != EXTREME_ITEM_TITLE), ITEM_ID]
    candidates = np.flatnonzero((frame[EVENT_TYPE] == PURCHASE).to_numpy() & frame[ITEM_ID].isin(ordinary).to_numpy())
    if len(candidates) < _MALFORMED_ROWS:
        raise ConfigError(
            f"Only {len(candidates)} ordinary purchases to copy into {_MALFORMED_ROWS} malformed rows: "
            "generate more customers or days, or pass malformed=False."
        )
    broken = frame.iloc[rng.choice(candidates, _MALFORMED_ROWS, replace=False)].reset_index(drop=True)
    broken[VALUE] = broken[VALUE].astype(object)
    broken.loc[[0, 1], ITEM_ID] = np.nan
    broken.loc[2, VALUE] = -2.0
    broken.loc[3, VALUE] = "two"
    broken.loc[4, VALUE] = "1,5"
    broken.loc[6, TIMESTAMP] = FUTURE_TIMESTAMP
    broken.loc[7, ITEM_ID] = "P" + "9" * (len(products[ITEM_ID].iloc[0]) - 1)  # beyond the catalogue's numbers
    # row 5 stays an exact copy: a duplicate
    combined = pd.concat([frame.astype({VALUE: object}), broken], ignore_index=True)
    return combined.sort_values(TIMESTAMP, kind="stable", ignore_index=True)


def generate_scale(users: int = 1_000_000, items: int = 100_000, per_user: float = 8.0, tastes: int = 500,
                   seed: int = 0) -> pd.DataFrame:
    """A large implicit-feedback set for load tests (``user_id, item_id``), vectorised: items fall into ``tastes``
    groups with Zipf popularity inside each; each user draws Poisson(``per_user``) items, 80% from one group of
    their own, the rest from the whole catalogue by popularity. Ids are strings ``u<n>`` / ``i<n>``."""
    rng = np.random.default_rng(seed)
    group = rng.integers(tastes, size=items)
    popularity = 1.0 / rng.permutation(np.arange(1, items + 1)) ** 0.8
    by_group = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[by_group], np.arange(tastes + 1))
    counts = np.maximum(rng.poisson(per_user, size=users), 1)
    user = np.repeat(np.arange(users), counts)
    own = rng.random(len(user)) < 0.8
    taste = rng.integers(tastes, size=users)[user[own]]
    low, high = starts[taste], starts[taste + 1]
    picked = np.empty(len(user), np.int64)
    picked[own] = by_group[np.minimum(low + (rng.random(own.sum()) ** 2 * (high - low)).astype(np.int64), high - 1)]
    picked[~own] = rng.choice(items, size=int((~own).sum()), p=popularity / popularity.sum())
    frame = pd.DataFrame({"user_id": np.char.add("u", user.astype(str)),
                          "item_id": np.char.add("i", picked.astype(str))})
    return frame.drop_duplicates(ignore_index=True)
