"""Reference table of real cities, their countries, currencies and mobile operators."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CITIES", "COUNTRIES", "City", "Country"]


@dataclass(frozen=True, slots=True)
class Country:
    """A country: ISO 3166-1 alpha-2 code, currency, a rough price factor and its operators."""

    code: str
    currency: str
    # Prices are drawn in USD-like units and multiplied by this, so that JPY amounts look like
    # yen and "spent more than X" thresholds can be scaled per currency.
    price_factor: float
    operators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class City:
    """A city with its region, country and real coordinates; `weight` is its share of users."""

    name: str
    region: str
    country: str
    lat: float
    lon: float
    weight: float


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("US", "USD", 1.0, ("Verizon", "AT&T", "T-Mobile")),
        Country("GB", "GBP", 0.8, ("EE", "Vodafone UK", "O2 UK", "Three UK")),
        Country("DE", "EUR", 0.9, ("Telekom", "Vodafone DE", "O2 DE")),
        Country("FR", "EUR", 0.9, ("Orange", "SFR", "Bouygues Telecom", "Free Mobile")),
        Country("ES", "EUR", 0.9, ("Movistar", "Vodafone ES", "Orange ES")),
        Country("IT", "EUR", 0.9, ("TIM", "Vodafone IT", "WindTre", "Iliad")),
        Country("NL", "EUR", 0.9, ("KPN", "Vodafone NL", "Odido")),
        Country("PL", "PLN", 4.0, ("Play", "Orange PL", "Plus", "T-Mobile PL")),
        Country("SE", "SEK", 10.0, ("Telia", "Tele2", "Telenor SE", "Tre")),
        Country("CA", "CAD", 1.4, ("Rogers", "Bell", "Telus")),
        Country("BR", "BRL", 5.0, ("Vivo", "Claro BR", "TIM Brasil")),
        Country("JP", "JPY", 150.0, ("NTT Docomo", "au", "SoftBank", "Rakuten Mobile")),
        Country("IN", "INR", 80.0, ("Jio", "Airtel", "Vi")),
        Country("AU", "AUD", 1.5, ("Telstra", "Optus", "Vodafone AU")),
        Country("MX", "MXN", 17.0, ("Telcel", "AT&T MX", "Movistar MX")),
        Country("CH", "CHF", 0.9, ("Swisscom", "Sunrise", "Salt")),
    )
}

# Coordinates of each city centre (WGS 84, four decimals); weights roughly follow how many
# users a European/US-centred shop would see from each city.
CITIES: tuple[City, ...] = (
    City("New York", "New York", "US", 40.7128, -74.0060, 9.0),
    City("Los Angeles", "California", "US", 34.0522, -118.2437, 6.0),
    City("Chicago", "Illinois", "US", 41.8781, -87.6298, 4.0),
    City("Houston", "Texas", "US", 29.7604, -95.3698, 3.0),
    City("San Francisco", "California", "US", 37.7749, -122.4194, 3.0),
    City("Seattle", "Washington", "US", 47.6062, -122.3321, 2.0),
    City("London", "England", "GB", 51.5074, -0.1278, 8.0),
    City("Manchester", "England", "GB", 53.4808, -2.2426, 2.0),
    City("Edinburgh", "Scotland", "GB", 55.9533, -3.1883, 1.0),
    City("Berlin", "Berlin", "DE", 52.5200, 13.4050, 4.0),
    City("Munich", "Bavaria", "DE", 48.1351, 11.5820, 2.5),
    City("Hamburg", "Hamburg", "DE", 53.5511, 9.9937, 2.0),
    City("Paris", "Île-de-France", "FR", 48.8566, 2.3522, 5.0),
    City("Lyon", "Auvergne-Rhône-Alpes", "FR", 45.7640, 4.8357, 1.5),
    City("Marseille", "Provence-Alpes-Côte d'Azur", "FR", 43.2965, 5.3698, 1.5),
    City("Madrid", "Community of Madrid", "ES", 40.4168, -3.7038, 3.0),
    City("Barcelona", "Catalonia", "ES", 41.3874, 2.1686, 2.5),
    City("Rome", "Lazio", "IT", 41.9028, 12.4964, 2.5),
    City("Milan", "Lombardy", "IT", 45.4642, 9.1900, 2.5),
    City("Amsterdam", "North Holland", "NL", 52.3676, 4.9041, 2.0),
    City("Rotterdam", "South Holland", "NL", 51.9244, 4.4777, 1.0),
    City("Warsaw", "Masovian", "PL", 52.2297, 21.0122, 2.0),
    City("Kraków", "Lesser Poland", "PL", 50.0647, 19.9450, 1.0),
    City("Stockholm", "Stockholm County", "SE", 59.3293, 18.0686, 1.5),
    City("Gothenburg", "Västra Götaland", "SE", 57.7089, 11.9746, 0.8),
    City("Toronto", "Ontario", "CA", 43.6532, -79.3832, 3.0),
    City("Vancouver", "British Columbia", "CA", 49.2827, -123.1207, 1.5),
    City("Montreal", "Quebec", "CA", 45.5019, -73.5674, 1.5),
    City("São Paulo", "São Paulo", "BR", -23.5505, -46.6333, 3.0),
    City("Rio de Janeiro", "Rio de Janeiro", "BR", -22.9068, -43.1729, 2.0),
    City("Tokyo", "Tokyo", "JP", 35.6762, 139.6503, 3.0),
    City("Osaka", "Osaka", "JP", 34.6937, 135.5023, 1.5),
    City("Mumbai", "Maharashtra", "IN", 19.0760, 72.8777, 2.0),
    City("Bengaluru", "Karnataka", "IN", 12.9716, 77.5946, 2.0),
    City("Delhi", "Delhi", "IN", 28.7041, 77.1025, 2.0),
    City("Sydney", "New South Wales", "AU", -33.8688, 151.2093, 2.0),
    City("Melbourne", "Victoria", "AU", -37.8136, 144.9631, 1.5),
    City("Mexico City", "Mexico City", "MX", 19.4326, -99.1332, 2.5),
    City("Guadalajara", "Jalisco", "MX", 20.6597, -103.3496, 1.0),
    City("Zurich", "Zurich", "CH", 47.3769, 8.5417, 1.0),
    City("Geneva", "Geneva", "CH", 46.2044, 6.1432, 0.7),
)
