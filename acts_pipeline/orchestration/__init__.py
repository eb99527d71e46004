"""The Dagster definitions, wired by `acts_pipeline.definitions`: partitions, assets, sensors,
checks and the retention job, over the exchange client and the MongoDB storage below them.

    partitions    the minute x symbol partitions (a rolling window) and run range tags
    assets        order_book_snapshot, order_book_features, klines_1m
    capture       when a minute's book may be taken (close + tolerance): the CaptureClock resource
    klines_budget how klines share the request weight with the books
    sensors       minute_sensor, klines_catch_up_sensor
    symbols       registering symbols, checked against exchangeInfo
    symbol_watch  every registered symbol checked before it is collected; the tracked_symbols asset
    checks        the asset checks on the stored data
    retention     the hourly job that deletes old runs and their event logs
"""
