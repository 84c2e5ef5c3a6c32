"""The shop's catalogue: products, campaigns, forms, videos and apps the activity refers to."""

from __future__ import annotations

import random
from dataclasses import dataclass

from segstream.generate.sampling import WeightedChoice, zipf_weights

__all__ = [
    "APPS",
    "CATEGORIES",
    "FORMS",
    "INTERESTS",
    "SITE",
    "Campaign",
    "Catalogue",
    "Product",
    "build_catalogue",
]

SITE = "https://shop.example.com"

# Category -> (median price in USD-like units, spread of its log-normal price distribution).
CATEGORIES: dict[str, tuple[float, float]] = {
    "electronics": (180.0, 0.9),
    "computers": (650.0, 0.6),
    "phones": (450.0, 0.5),
    "audio": (90.0, 0.8),
    "home": (45.0, 0.8),
    "kitchen": (35.0, 0.8),
    "furniture": (220.0, 0.7),
    "garden": (30.0, 0.8),
    "fashion": (40.0, 0.6),
    "shoes": (75.0, 0.5),
    "beauty": (22.0, 0.6),
    "health": (18.0, 0.6),
    "sports": (55.0, 0.9),
    "outdoor": (80.0, 0.9),
    "toys": (25.0, 0.7),
    "books": (15.0, 0.4),
    "music": (14.0, 0.4),
    "games": (45.0, 0.5),
    "pets": (20.0, 0.7),
    "grocery": (8.0, 0.6),
}

_ADJECTIVES = (
    "Classic", "Smart", "Ultra", "Eco", "Pro", "Compact", "Deluxe", "Urban", "Nordic", "Vintage",
    "Wireless", "Premium", "Essential", "Lightweight", "Organic", "Studio", "Travel", "Family",
)  # fmt: skip
_NOUNS: dict[str, tuple[str, ...]] = {
    "electronics": ("Camera", "Smartwatch", "Drone", "E-Reader", "Projector"),
    "computers": ("Laptop", "Monitor", "Keyboard", "Tablet Stand", "Docking Station"),
    "phones": ("Phone", "Phone Case", "Charger", "Power Bank"),
    "audio": ("Headphones", "Speaker", "Earbuds", "Soundbar"),
    "home": ("Lamp", "Rug", "Blanket", "Vase", "Mirror"),
    "kitchen": ("Kettle", "Pan", "Knife Set", "Blender", "Coffee Maker"),
    "furniture": ("Chair", "Desk", "Sofa", "Bookshelf", "Bed Frame"),
    "garden": ("Planter", "Hose", "Seed Kit", "Pruner"),
    "fashion": ("Jacket", "Shirt", "Dress", "Scarf", "Jeans"),
    "shoes": ("Sneakers", "Boots", "Sandals", "Loafers"),
    "beauty": ("Serum", "Lipstick", "Shampoo", "Face Cream"),
    "health": ("Vitamins", "First Aid Kit", "Thermometer"),
    "sports": ("Yoga Mat", "Dumbbells", "Tennis Racket", "Football"),
    "outdoor": ("Tent", "Backpack", "Sleeping Bag", "Hiking Poles"),
    "toys": ("Puzzle", "Building Set", "Plush Bear", "Board Game"),
    "books": ("Novel", "Cookbook", "Travel Guide", "Biography"),
    "music": ("Vinyl Record", "Guitar Strings", "Ukulele"),
    "games": ("Video Game", "Controller", "Gaming Headset"),
    "pets": ("Dog Bed", "Cat Tree", "Pet Food", "Leash"),
    "grocery": ("Coffee Beans", "Olive Oil", "Tea Selection", "Chocolate"),
}

FORMS: tuple[str, ...] = (
    "newsletter-signup", "contact-us", "store-feedback", "return-request", "warranty-claim",
    "b2b-inquiry", "survey-2026-q4", "gift-card-request", "event-registration", "size-advice",
)  # fmt: skip

INTERESTS: tuple[str, ...] = (
    "hiking", "cooking", "gaming", "running", "photography", "fashion", "travel", "music",
    "reading", "yoga", "cycling", "gardening", "tech", "pets", "home-decor", "fitness",
    "movies", "football", "skiing", "wine",
)  # fmt: skip

# App name -> platforms it is published on.
APPS: dict[str, tuple[str, ...]] = {
    "ShopExample": ("ios", "android"),
    "ShopExample Lite": ("android",),
    "ShopExample Rewards": ("ios", "android"),
}


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue item; `price` is in USD-like units before the country's price factor."""

    product_id: str
    name: str
    category: str
    price: float


@dataclass(frozen=True, slots=True)
class Campaign:
    """A marketing campaign with its tracked links."""

    campaign_id: str
    slug: str
    link_ids: tuple[str, ...]

    def url(self, link_index: int) -> str:
        """The tracked landing-page URL of one of the campaign's links."""
        return f"{SITE}/promo/{self.slug}?utm_campaign={self.campaign_id}&utm_content={link_index}"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything activity events refer to, with popularity samplers."""

    products: tuple[Product, ...]
    campaigns: tuple[Campaign, ...]
    videos: tuple[str, ...]
    product_popularity: WeightedChoice[Product]
    campaign_popularity: WeightedChoice[Campaign]
    video_popularity: WeightedChoice[str]

    def popular_products(self, count: int) -> list[Product]:
        """The `count` most popular products, most popular first."""
        return self.product_popularity.items[:count]


_CAMPAIGN_THEMES = (
    "black-friday", "cyber-monday", "summer-sale", "winter-sale", "back-to-school",
    "spring-refresh", "new-arrivals", "clearance", "loyalty-week", "free-shipping", "singles-day",
    "mothers-day", "fathers-day", "valentines", "easter", "holiday-gifts", "flash-deal",
    "app-launch", "referral-bonus", "outdoor-days",
)  # fmt: skip


def build_catalogue(rng: random.Random, products: int = 5000, campaigns: int = 50) -> Catalogue:
    """Build a catalogue; popularity is Zipf over a random ranking, so ids carry no rank."""
    categories = list(CATEGORIES)
    items: list[Product] = []
    for number in range(1, products + 1):
        category = categories[rng.randrange(len(categories))]
        median, spread = CATEGORIES[category]
        price = max(0.99, round(median * rng.lognormvariate(0.0, spread)) - 0.01)
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}"
        items.append(Product(f"sku-{number:05d}", name, category, round(price, 2)))
    ranking = items[:]
    rng.shuffle(ranking)

    drives: list[Campaign] = []
    for number in range(1, campaigns + 1):
        theme = _CAMPAIGN_THEMES[(number - 1) % len(_CAMPAIGN_THEMES)]
        campaign_id = f"cmp-{number:03d}"
        links = tuple(f"lnk-{number:03d}-{k}" for k in range(1, rng.randint(2, 5)))
        drives.append(Campaign(campaign_id, f"{theme}-{number:03d}", links))
    campaign_ranking = drives[:]
    rng.shuffle(campaign_ranking)

    videos = tuple(f"vid-{number:04d}" for number in range(1, 301))
    return Catalogue(
        products=tuple(items),
        campaigns=tuple(drives),
        videos=videos,
        # Exponents chosen so the best seller takes ~4% of views and the top campaign ~10%
        # of clicks: long tails, but no single item dominating every session.
        product_popularity=WeightedChoice(ranking, zipf_weights(len(ranking), 0.8)),
        campaign_popularity=WeightedChoice(campaign_ranking, zipf_weights(campaigns, 0.6)),
        video_popularity=WeightedChoice(list(videos), zipf_weights(len(videos), 0.8)),
    )
