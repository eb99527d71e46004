"""The stream recorder: local order books from Binance's diff-depth streams, and every symbol's
book at every minute close, made durable for the `order_book_snapshot` asset.

Not a Dagster run: a long-running process beside the asset graph (Dagster's guidance for
continuous streams), whose results the graph reads from MongoDB (`boundary_books`) and whose
health it checks (`recorder_status`). `acts-pipeline record` runs it; `acts-pipeline dev` starts
it with the platform.

- `documents`: a boundary record as the document stored, and the status document.
- `recorder`: `Recorder`, the books of every tracked symbol over the stream pool, their snapshots
  (paced through the weight gate), the boundary books written at each close, health.
- `service`: the process: settings, signals, the health endpoint.

Imports: core (the local book, the boundary rule, parsing), exchange (transport, streams, the
REST client), storage (the MongoDB store and spool), settings. Nothing of Dagster.
"""
