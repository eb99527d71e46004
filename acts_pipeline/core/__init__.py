"""The pure core: what a minute of market data is and what is computed from it. Nothing here
knows Dagster, MongoDB or HTTP.

    cells       a (minute, symbol) cell, minute keys and times
    models      plain dataclasses: OrderBook, OrderBookSnapshot, Kline, SymbolInfo
    parsing     Binance REST bodies -> models, validated (real payloads in the docstrings)
    features    the order-book features, vectorised
    quality     the data checks and the coverage accounting
    errors      the typed errors of the exchange edge and of configuration
"""
