"""ACTS data platform: minute Binance Spot order-book snapshots, features and klines in MongoDB."""

__version__ = "0.1.0"
