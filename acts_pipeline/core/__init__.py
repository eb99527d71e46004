"""The pure core: what a minute of market data is and what is computed from it. Nothing here
knows Dagster, MongoDB or HTTP.

    cells       a (minute, symbol) cell, minute keys and times
    models      plain dataclasses: OrderBook, OrderBookSnapshot, Kline, SymbolInfo, DepthUpdate
    parsing     Binance REST bodies and stream messages -> models, validated (real payloads)
    local_book  one symbol's local order book, by Binance's snapshot-and-diff procedure
    boundary    when each symbol's book at a minute close is final, for one websocket connection
    features    the order-book features, vectorised
    quality     the data checks and the coverage accounting
    errors      the typed errors of the exchange edge and of configuration
"""
