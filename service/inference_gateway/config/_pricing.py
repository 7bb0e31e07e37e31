"""The native format's `pricing:` section, and the money values aliases and callers carry.

pricing:
  currency: USD                           # one currency for every price; default USD
  hardware:                               # per-second prices of hardware SKUs
    gpu-a100-80gb: "0.0014"
  models:                                 # owner/name, owner/*, or deployments/owner/name
    meta/meta-llama-3-8b-instruct: {input_token: "0.00000005", output_token: "0.00000025"}
    black-forest-labs/*: {image: "0.003"}
    acme/upscaler: {hardware: gpu-a100-80gb}
    kwaivgi/kling-v2: {output_second: "0.28", duration_input: duration}

Prices are read as decimals: quote them ("0.0014") so YAML never rounds one through a
binary float (an unquoted number is read back from its shortest spelling, which is exact
for any price written with fewer than 16 digits).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from inference_gateway.config._reader import Reader, join
from inference_gateway.config._yaml import LocatedMap
from inference_gateway.pricing import ModelPrice, PriceTable, Rate, Unit

__all__ = ["PRICING_SECTION", "read_money", "read_pricing"]

PRICING_SECTION = "pricing"
_DIRECT = (Unit.INPUT_TOKEN, Unit.OUTPUT_TOKEN, Unit.IMAGE, Unit.OUTPUT_SECOND)
_MODEL_KEYS = (*(unit.value for unit in _DIRECT), "hardware", "duration_input")


def read_money(reader: Reader, value: object, line: int, where: str) -> Decimal | None:
    """A non-negative decimal amount, from a quoted string or a YAML number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        reader.problem(line, where, 'expected an amount, for example "0.0014"')
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        reader.problem(line, where, f'expected an amount >= 0, for example "0.0014", got {value!r}')
        return None
    return amount


def read_pricing(reader: Reader, document: LocatedMap) -> PriceTable | None:
    """The `pricing:` section, or None when the file has none (every model `unknown`)."""
    if PRICING_SECTION not in document:
        return None
    section = reader.mapping(
        document[PRICING_SECTION], document.line_of(PRICING_SECTION), PRICING_SECTION
    )
    if section is None:
        return None
    reader.check_keys(section, ("currency", "hardware", "models"), PRICING_SECTION)
    currency = reader.optional(section, "currency", PRICING_SECTION, reader.text) or "USD"
    hardware: dict[str, Decimal] = {}
    if "hardware" in section:
        where = join(PRICING_SECTION, "hardware")
        skus = reader.mapping(section["hardware"], section.line_of("hardware"), where)
        for sku, price in (skus or {}).items():
            amount = read_money(reader, price, skus.line_of(sku) if skus else 0, join(where, sku))
            if amount is not None:
                hardware[str(sku)] = amount
    models: dict[str, ModelPrice] = {}
    if "models" in section:
        where = join(PRICING_SECTION, "models")
        entries = reader.mapping(section["models"], section.line_of("models"), where)
        for key, spec in (entries or {}).items():
            line = entries.line_of(key) if entries else 0
            price = _read_model_price(reader, spec, line, join(where, key), hardware)
            if price is not None:
                models[str(key)] = price
    return PriceTable(currency=currency, models=models)


def _read_model_price(
    reader: Reader, value: object, line: int, where: str, hardware: dict[str, Decimal]
) -> ModelPrice | None:
    spec = reader.mapping(value, line, where)
    if spec is None:
        return None
    reader.check_keys(spec, _MODEL_KEYS, where)
    rates = []
    for unit in _DIRECT:
        if unit.value in spec:
            amount = read_money(reader, spec[unit.value], spec.line_of(unit.value), where)
            if amount is not None:
                rates.append(Rate(unit, amount))
    sku = reader.optional(spec, "hardware", where, reader.text)
    if sku is not None:
        if sku not in hardware:
            known = ", ".join(sorted(hardware)) or "none"
            reader.problem(
                spec.line_of("hardware"),
                join(where, "hardware"),
                f"{sku!r} is not under pricing.hardware (known: {known}); add its price there",
            )
            return None
        rates.append(Rate(Unit.HARDWARE_SECOND, hardware[sku]))
    if not rates:
        reader.problem(
            line, where, "give a price: input_token/output_token, image, output_second or hardware"
        )
        return None
    duration_input = reader.optional(spec, "duration_input", where, reader.text) or "duration"
    return ModelPrice(tuple(rates), hardware=sku, duration_input=duration_input)
