"""The partitions of the history assets: whole UTC days, and months x symbol.

The live minute x symbol graph (`partitions.py`) covers the current hours only; everything older is
seen and backfilled through these coarser partitions, which stay within Dagster's guidance (at
most 100,000 keys per asset) for decades: a day is one key (366 a year), a month x symbol is 12
keys a year per symbol (6,000 a year at 500 symbols).

The start is fixed (not read from the environment), so the keys are the same in every process and
never need a reload to move: a new day or month appears by itself when it closes.
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, MonthlyPartitionsDefinition, MultiPartitionsDefinition

from acts_pipeline.orchestration.partitions import HISTORY_START, symbol_partitions

__all__ = ["HISTORY_START", "day_partitions", "month_partitions", "month_symbol_partitions"]

#: One key per closed UTC day (`2026-11-30`); today appears once it has closed.
day_partitions = DailyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC")

#: One key per UTC month and symbol (`2026-11-01|BTCUSDT`): the klines history. The month in
#: progress is a key too (`end_offset=1`), so a symbol added today gets its klines up to now; a
#: later run over the same month replaces them with the whole month.
month_partitions = MonthlyPartitionsDefinition(start_date=HISTORY_START, timezone="UTC", end_offset=1)
month_symbol_partitions = MultiPartitionsDefinition({"month": month_partitions, "symbol": symbol_partitions})
