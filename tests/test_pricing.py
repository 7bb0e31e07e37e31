"""The price table: reading it from the configuration, and the Decimal arithmetic."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.accounting import usage_of
from inference_gateway.config import ConfigError, describe_config, load_config
from inference_gateway.pricing import Cost, ModelPrice, PriceTable, Rate, Unit, format_amount
from inference_gateway.replicate import Prediction

HEADER = "aliases: {}\n"


def load(tmp_path: Path, text: str) -> PriceTable:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEADER + textwrap.dedent(text))
    config = load_config(path, {})
    assert config.pricing is not None
    return config.pricing


def problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEADER + textwrap.dedent(text))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return str(caught.value)


def prediction(**fields: object) -> Prediction:
    return Prediction.parse({"id": "p1", "status": "succeeded", **fields}, endpoint="get")


def test_owner_wildcard_and_deployments_are_looked_up_by_key(tmp_path: Path) -> None:
    table = load(
        tmp_path,
        """\
        pricing:
          currency: EUR
          hardware: {gpu-l40s: "0.000975"}
          models:
            meta/*: {input_token: "0.00000005", output_token: "0.00000025"}
            meta/llama-2-7b-chat: {output_token: "0.0000005"}
            deployments/acme/prod: {hardware: gpu-l40s}
        """,
    )
    assert table.currency == "EUR"
    exact = table.lookup("meta/llama-2-7b-chat")
    owner = table.lookup("meta/meta-llama-3-8b-instruct")
    assert exact is not None
    assert exact.rates == (Rate(Unit.OUTPUT_TOKEN, Decimal("0.0000005")),)
    assert owner is not None
    assert {r.unit for r in owner.rates} == {"input_token", "output_token"}
    deployment = table.lookup("deployments/acme/prod")
    assert deployment == ModelPrice((Rate(Unit.HARDWARE_SECOND, Decimal("0.000975")),), "gpu-l40s")
    assert table.lookup("mistralai/mixtral") is None
    assert table.lookup(None) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("pricing: {models: {a/b: {hardware: gpu-x}}}", "'gpu-x' is not under pricing.hardware"),
        ('pricing: {models: {a/b: {image: "-1"}}}', "expected an amount >= 0"),
        ('pricing: {models: {a/b: {image: "cheap"}}}', "expected an amount >= 0"),
        ("pricing: {models: {a/b: {}}}", "give a price"),
        ('pricing: {models: {a/b: {per_image: "1"}}}', "unknown key"),
        ("pricing: {currency: 1}", "expected a string"),
    ],
)
def test_a_bad_price_table_is_refused_saying_what_to_write(
    tmp_path: Path, text: str, says: str
) -> None:
    assert says in problems(tmp_path, text)


def test_a_budget_names_day_or_month(tmp_path: Path) -> None:
    caller = 'callers: {a: {token_sha256: "%s", aliases: ["*"], budget: %s}}\n'
    digest = "0" * 64
    assert "expected day or month" in problems(
        tmp_path, caller % (digest, "{amount: 1, per: week}")
    )
    assert "budget: {amount" in problems(tmp_path, caller % (digest, "{amount: 1}"))


prices = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False)
quantities = st.integers(min_value=0, max_value=10**7)


@given(price=prices, tokens_in=quantities, tokens_out=quantities)
def test_cost_is_exact_decimal_arithmetic(price: Decimal, tokens_in: int, tokens_out: int) -> None:
    """Whatever the price's digits, the YAML text round-trips exactly and the cost is the
    exact product: no binary float anywhere."""
    price = price.normalize()
    table = PriceTable(
        models={
            "o/m": ModelPrice(
                (Rate(Unit.INPUT_TOKEN, price), Rate(Unit.OUTPUT_TOKEN, price)),
            )
        }
    )
    metrics = {"input_token_count": tokens_in, "output_token_count": tokens_out}
    cost = table.cost(table.lookup("o/m"), usage_of(prediction(metrics=metrics), None))
    assert cost.amount == (price * (tokens_in + tokens_out)).quantize(Decimal("0.000000001"))
    assert Decimal(format_amount(cost.amount)) == cost.amount
    assert "E" not in format_amount(cost.amount)
    assert Cost.from_json(cost.to_json()) == cost


@given(price=prices)
def test_a_price_written_in_yaml_is_read_exactly(price: Decimal) -> None:
    from inference_gateway.config._pricing import read_money
    from inference_gateway.config._reader import Reader

    reader = Reader("x.yaml", {})
    text = format(price.normalize(), "f")
    assert read_money(reader, text, 1, "k") == price
    assert reader.problems == []


def test_images_are_image_count_else_output_files() -> None:
    official = prediction(output=["a.png"], metrics={"image_count": 3})
    community = prediction(output=["a.png", "b.png"], metrics={"predict_time": 1.5})
    single = prediction(output="a.png")
    assert usage_of(official, None).images == 3
    assert usage_of(community, None).images == 2
    assert usage_of(single, None).images == 1


def test_an_aborted_prediction_costs_nothing_and_a_missing_count_is_unknown() -> None:
    price = ModelPrice((Rate(Unit.HARDWARE_SECOND, Decimal("0.001")),))
    table = PriceTable(models={"o/m": price})
    aborted = prediction(status="aborted", metrics={"predict_time": 2.0})
    assert table.cost(price, usage_of(aborted, price)).amount == 0
    silent = prediction(metrics={})
    assert table.cost(price, usage_of(silent, price)).amount is None
    assert table.cost(None, usage_of(silent, price)) == Cost.unknown("USD")


def test_output_seconds_come_from_the_duration_input() -> None:
    price = ModelPrice((Rate(Unit.OUTPUT_SECOND, Decimal("0.28")),), duration_input="seconds")
    table = PriceTable(models={"o/m": price})
    video = prediction(input={"seconds": 5}, metrics={"predict_time": 40.0})
    assert table.cost(price, usage_of(video, price)).amount == Decimal("1.40")


def test_check_config_shows_each_price_and_budget(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            pricing:
              hardware: {{gpu-l40s: "0.000975"}}
              models:
                black-forest-labs/*: {{image: "0.003"}}
                acme/upscaler: {{hardware: gpu-l40s}}
            callers:
              team-a:
                token_sha256: "{"0" * 64}"
                aliases: ["*"]
                budget: {{amount: "25", per: month}}
            """
        )
    )
    shown = describe_config(load_config(path, {}), {}).splitlines()
    assert "  budget          25 a month (UTC)" in shown
    assert "  acme/upscaler: 0.000975 per hardware_second (gpu-l40s)" in shown
    assert "  black-forest-labs/*: 0.003 per image" in shown
    empty = tmp_path / "empty.yaml"
    empty.write_text("aliases: {}\npricing: {}\n")
    assert "Prices: none, so every call's cost is unknown" in describe_config(
        load_config(empty, {}), {}
    )
