"""The history assets (issue 12): backfills of any past range from the UI, nothing restarted.

The minute x symbol graph covers the live hours; these assets cover everything before, on the
coarse partitions of `history_partitions` (within Dagster's 100,000-key guidance for decades), and
write into the same collections as the minute runs, in the same documents:

    klines_history                  month x symbol  Binance klines -> klines_1m
    features_history                day             stored snapshots -> order_book_features
    snapshots_from_boundary_books   day             the recorder's boundary books -> the day's
                                                    missing order_book_snapshots (and features)

Each run covers its whole selection (`BackfillPolicy.single_run()`), one partition after the
other, and reports each partition materialized as soon as it is stored (an `AssetMaterialization`
per partition, public API): a partition it could not store is not claimed. The resources are the
code location's: `mongo`, `exchange`, `capture_clock`.

Two of them also run by themselves: `klines_history` over a span, requested by
`klines_history_catch_up_sensor` for klines missing before the live window, and
`snapshots_from_boundary_books` for yesterday, every night at 00:02 UTC
(`snapshots_from_boundary_books_schedule`).
"""

from acts_pipeline.orchestration.history_features import ASSETS as FEATURES_ASSETS
from acts_pipeline.orchestration.history_klines import ASSETS as KLINES_ASSETS
from acts_pipeline.orchestration.history_snapshots import ASSETS as SNAPSHOTS_ASSETS
from acts_pipeline.orchestration.history_snapshots import SCHEDULES as SNAPSHOTS_SCHEDULES

ASSETS = [*KLINES_ASSETS, *FEATURES_ASSETS, *SNAPSHOTS_ASSETS]
#: `snapshots_from_boundary_books_schedule`: yesterday's gaps filled from the recorder's books, nightly.
SCHEDULES = [*SNAPSHOTS_SCHEDULES]
