"""What a prediction cost: the price table, and the arithmetic, in Decimal (never floats).

Replicate bills official models per token or per image, and every other model per second
of the hardware it ran on; a prediction does not say which hardware, and Replicate's
hardware list carries no prices, so both come from the configuration's `pricing:`
section, kept current by hand (see the README). A model the table does not name is
priced `unknown`: the gateway never guesses a price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from inference_gateway.model_ids import EndpointKind, ModelRef

__all__ = [
    "NANO",
    "Bounds",
    "Cost",
    "CostItem",
    "ModelPrice",
    "PriceTable",
    "Rate",
    "Unit",
    "Usage",
    "format_amount",
    "price_key",
]

# Amounts are kept to the nano-unit of the currency, as google.type.Money does.
NANO = Decimal("0.000000001")


class Unit(StrEnum):
    INPUT_TOKEN = "input_token"
    OUTPUT_TOKEN = "output_token"
    IMAGE = "image"
    # A second of output media (a video model's `duration` input).
    OUTPUT_SECOND = "output_second"
    # A second of predict time on the hardware SKU the price names.
    HARDWARE_SECOND = "hardware_second"


@dataclass(frozen=True, slots=True)
class Rate:
    unit: Unit
    price: Decimal


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """How one model (or every model of an owner) is billed."""

    rates: tuple[Rate, ...]
    # The hardware SKU a HARDWARE_SECOND rate came from, for the reader of a cost.
    hardware: str | None = None
    # The input that says how many seconds of output an OUTPUT_SECOND model makes.
    duration_input: str = "duration"


@dataclass(frozen=True, slots=True)
class Usage:
    """What a finished prediction reports (None: not reported)."""

    input_tokens: Decimal | None = None
    output_tokens: Decimal | None = None
    images: Decimal | None = None
    predict_seconds: Decimal | None = None
    output_seconds: Decimal | None = None

    def of(self, unit: Unit) -> Decimal | None:
        return {
            Unit.INPUT_TOKEN: self.input_tokens,
            Unit.OUTPUT_TOKEN: self.output_tokens,
            Unit.IMAGE: self.images,
            Unit.HARDWARE_SECOND: self.predict_seconds,
            Unit.OUTPUT_SECOND: self.output_seconds,
        }[unit]


# Before the create, the most each quantity can be: the same shape as what is reported.
Bounds = Usage


@dataclass(frozen=True, slots=True)
class CostItem:
    unit: Unit
    quantity: Decimal
    price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class Cost:
    """An estimated cost; `amount` is None when the model has no price (never guessed)."""

    currency: str
    items: tuple[CostItem, ...] = ()
    known: bool = True
    cache_hit: bool = False
    hardware: str | None = None

    @property
    def amount(self) -> Decimal | None:
        if not self.known:
            return None
        return sum((item.amount for item in self.items), Decimal(0)).quantize(NANO)

    def to_json(self) -> dict[str, object]:
        """Plain JSON, amounts as decimal strings: for records kept in the shared store."""
        return {
            "currency": self.currency,
            "known": self.known,
            "cache_hit": self.cache_hit,
            "hardware": self.hardware,
            "items": [
                [item.unit.value, str(item.quantity), str(item.price)] for item in self.items
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cost:
        return cls(
            currency=str(data["currency"]),
            items=tuple(
                CostItem(Unit(unit), Decimal(quantity), Decimal(price))
                for unit, quantity, price in data["items"]
            ),
            known=bool(data["known"]),
            cache_hit=bool(data["cache_hit"]),
            hardware=data.get("hardware"),
        )

    @classmethod
    def unknown(cls, currency: str) -> Cost:
        return cls(currency, known=False)

    @classmethod
    def from_cache(cls, currency: str) -> Cost:
        """A response served from the cache: no prediction ran, nothing is billed."""
        return cls(currency, cache_hit=True)


def format_amount(amount: Decimal) -> str:
    """A plain decimal string (never exponent notation), to the nano-unit."""
    return f"{amount.quantize(NANO):f}"


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model key: `owner/name`, `owner/*`, or `deployments/owner/name`."""

    currency: str = "USD"
    models: Mapping[str, ModelPrice] = field(default_factory=dict)

    def lookup(self, key: str | None) -> ModelPrice | None:
        if not key:
            return None
        exact = self.models.get(key)
        if exact is not None:
            return exact
        owner = key.rpartition("/")[0]
        return self.models.get(f"{owner}/*") if owner else None

    def cost(self, price: ModelPrice | None, usage: Usage) -> Cost:
        """The cost of what ran; unknown without a price or a reported quantity."""
        if price is None:
            return Cost.unknown(self.currency)
        items = []
        for rate in price.rates:
            quantity = usage.of(rate.unit)
            if quantity is None:
                return Cost.unknown(self.currency)
            items.append(CostItem(rate.unit, quantity, rate.price))
        return Cost(self.currency, tuple(items), hardware=price.hardware)

    def worst_case(self, price: ModelPrice | None, bounds: Bounds) -> Decimal | None:
        """The most a prediction can cost within `bounds`; None when something is unbounded."""
        cost = self.cost(price, bounds)
        return cost.amount


def price_key(ref: ModelRef, reported_model: str = "") -> str | None:
    """The price table's key for a model: a deployment by its own name (it runs on the
    hardware it was given), any other by owner/name, from the id or from Replicate."""
    if ref.kind is EndpointKind.DEPLOYMENT:
        return f"deployments/{ref.owner}/{ref.name}"
    return ref.model_name or reported_model or None
