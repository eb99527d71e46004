"""Parsers of the diff-depth stream: the real capture parses exactly, malformed events are refused.

The real messages are the capture in `acts_simulator/data/binance/stream.jsonl` (README there),
used as they are; events built here are made up (named `made_up_*`).
"""

from __future__ import annotations

import copy
import json

import pytest

from acts_pipeline.core.errors import MalformedResponseError
from acts_pipeline.core.models import DepthUpdate
from acts_pipeline.core.parsing import (
    parse_depth_stream_message,
    parse_depth_update,
    split_combined_stream_message,
)


def depth_messages(captures_dir) -> list[dict]:
    lines = (captures_dir / "stream.jsonl").read_text().splitlines()
    messages = [json.loads(line)["message"] for line in lines[1:]]
    return [m for m in messages if "@depth" in m["stream"]]


def test_every_captured_depth_message_parses_to_its_own_fields(captures_dir):
    messages = depth_messages(captures_dir)
    assert len(messages) == 177  # 150 NKNUSDT, 15 LRCBTC, 10 BLZETH, 2 RUNEEUR
    for message in messages:
        data = message["data"]
        update = parse_depth_stream_message(message)
        assert update.symbol == data["s"] == message["stream"].split("@")[0].upper()
        assert (update.event_time_ms, update.first_update_id, update.final_update_id) == (data["E"], data["U"], data["u"])
        assert update.bids == tuple((float(p), float(q)) for p, q in data["b"])
        assert update.asks == tuple((float(p), float(q)) for p, q in data["a"])


def test_the_first_nknusdt_event_as_recorded(captures_dir):
    update = parse_depth_stream_message(depth_messages(captures_dir)[0])
    assert update == DepthUpdate(
        symbol="NKNUSDT", event_time_ms=1633998512068, first_update_id=499869750, final_update_id=499869752,
        bids=((0.3513, 6195.0), (0.3475, 5548.0), (0.3464, 6222.0)), asks=(),
    )


def test_a_zero_quantity_is_kept_as_a_deletion(captures_dir):
    # a real one: NKNUSDT U=499869834 deletes ask 0.3525 (the snapshot's best ask) with "0.00000000"
    message = next(m for m in depth_messages(captures_dir) if m["data"]["U"] == 499869834)
    assert ["0.35250000", "0.00000000"] in message["data"]["a"]
    assert (0.3525, 0.0) in parse_depth_stream_message(message).asks


MADE_UP_EVENT = {"e": "depthUpdate", "E": 1633998512568, "s": "NKNUSDT", "U": 10, "u": 12,
                 "b": [["0.35170000", "4265.00000000"]], "a": [["0.35290000", "0.00000000"]]}


def made_up(**changes) -> dict:
    event = copy.deepcopy(MADE_UP_EVENT)
    for key, value in changes.items():
        if value is ...:
            del event[key]
        else:
            event[key] = value
    return event


@pytest.mark.parametrize(
    ("made_up_event", "field"),
    [
        (made_up(U=13), "'U' 13 > final update ID 'u' 12"),
        (made_up(u=...), "'u'"),
        (made_up(U="10"), "'U'"),
        (made_up(E=None), "'E'"),
        (made_up(E=True), "'E'"),
        (made_up(b=...), "'b' (bids)"),
        (made_up(a={"0.1": "1"}), "'a' (asks)"),
        (made_up(b=[["0.35", "abc"]]), "'b' (bids)"),
        (made_up(b=[["0.35", None]]), "'b' (bids)"),
        (made_up(a=[["0.35"]]), "'a' (asks)"),
        (made_up(a=[["0.35", "1", "2"]]), "'a' (asks)"),
        (made_up(b=[["0.35", "-1"]]), "'b' (bids)"),
        (made_up(b=[["0", "1"]]), "'b' (bids)"),
        (made_up(a=[["NaN", "1"]]), "'a' (asks)"),
        (made_up(a=[["0.35", "inf"]]), "'a' (asks)"),
        (made_up(e="24hrTicker"), "'e'"),
    ],
)
def test_made_up_malformed_events_are_refused_naming_symbol_and_field(made_up_event, field):
    with pytest.raises(MalformedResponseError) as caught:
        parse_depth_update(made_up_event)
    assert caught.value.symbol == "NKNUSDT"
    assert "NKNUSDT" in str(caught.value) and field in str(caught.value)


def test_made_up_event_without_symbol_or_not_an_object_is_refused():
    with pytest.raises(MalformedResponseError, match="no symbol 's'"):
        parse_depth_update(made_up(s=...))
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        parse_depth_update([1, 2])


def test_made_up_event_of_another_symbol_than_its_stream_is_refused():
    with pytest.raises(MalformedResponseError, match="stream of BLZETH names another symbol"):
        parse_depth_stream_message({"stream": "blzeth@depth@100ms", "data": made_up()})


def test_combined_stream_envelope():
    assert split_combined_stream_message({"stream": "nknusdt@bookTicker", "data": {"u": 1}}) == (
        "nknusdt@bookTicker", {"u": 1})
    with pytest.raises(MalformedResponseError, match="no 'stream' name"):
        split_combined_stream_message({"result": None, "id": 1})  # a SUBSCRIBE reply
    with pytest.raises(MalformedResponseError, match="not a diff-depth stream"):
        parse_depth_stream_message({"stream": "nknusdt@bookTicker", "data": made_up()})
    # the 1000 ms stream's name has no speed suffix
    assert parse_depth_stream_message({"stream": "nknusdt@depth", "data": made_up()}).final_update_id == 12


def test_equal_decimal_strings_give_equal_floats():
    a = parse_depth_update(made_up(b=[["0.35170000", "1.00000000"]]))
    b = parse_depth_update(made_up(b=[["0.3517", "1"]]))
    assert a.bids == b.bids == ((0.3517, 1.0),)
