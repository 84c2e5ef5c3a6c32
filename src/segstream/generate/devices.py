"""Device types, brands and operating systems in realistic proportions."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICES", "Device"]


@dataclass(frozen=True, slots=True)
class Device:
    """One kind of device a customer uses; `weight` is its share of customers."""

    type: str
    brand: str
    os: str
    weight: float

    def as_trait(self) -> dict[str, str]:
        """The `device` trait object (SPEC §3.1)."""
        return {"type": self.type, "brand": self.brand, "os": self.os}


DEVICES: tuple[Device, ...] = (
    Device("mobile", "Apple", "iOS", 24.0),
    Device("mobile", "Samsung", "Android", 16.0),
    Device("mobile", "Google", "Android", 4.0),
    Device("mobile", "Xiaomi", "Android", 5.0),
    Device("mobile", "OnePlus", "Android", 1.5),
    Device("mobile", "Motorola", "Android", 1.5),
    Device("desktop", "Apple", "macOS", 12.0),
    Device("desktop", "Dell", "Windows", 9.0),
    Device("desktop", "HP", "Windows", 8.0),
    Device("desktop", "Lenovo", "Windows", 8.0),
    Device("desktop", "Lenovo", "Linux", 1.0),
    Device("tablet", "Apple", "iPadOS", 6.0),
    Device("tablet", "Samsung", "Android", 2.5),
    Device("tablet", "Amazon", "Fire OS", 1.5),
)
