"""The stream recorder through a real database outage: its private embedded server is stopped
across a minute close, then restarted on the same port and data (as in `test_database_faults.py`).
The close's boundary books wait in the recorder's spool on disk and reach `boundary_books` once
MongoDB is back, before the newer ones, exactly once, and each is the simulator's true book at its
close.

The outage is a phase of the one recorder run that `test_recorder.py` checks too (`recorded_run`:
the database is stopped across the first close after every symbol is in sync), so it costs no
minute close of its own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from acts_pipeline.storage.boundary_books import books_of
from acts_pipeline.storage.collections import boundary_book_usable as usable
from acts_pipeline_tests.integration.test_recorder import (
    SYMBOLS, Recorded, assert_true_book, recorded_run, stored_books)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def recorded(simulator_process, tmp_path_factory) -> Recorded:
    return recorded_run(simulator_process, tmp_path_factory)


def test_boundary_books_of_a_database_outage_are_spooled_then_stored_once(recorded, simulator_process):
    """The database stopped across a close once every symbol was in sync:

    - meanwhile that close's decisions (one per symbol, books with their levels) are in the spool
      on disk, and the recorder's /health counts the failed write and the spooled batch while
      every book stays in sync;
    - the server restarted on the same port and data, the recorder writes the spooled close
      before the next one (once the next close is stored, so is the outage's), as it was spooled,
      field for field and level for level;
    - both closes have exactly one decision per symbol, every book of them is the simulator's true
      book at its close, a decision without a book says why, and writes go on: the close after
      the outage has books (every symbol one when it is the run's last close);
    - the spool ends empty (no batch, no temporary file), and the recorder's last status still
      counts the write error and no spooled batch."""
    outage, after = recorded.outage_close, recorded.outage_close + timedelta(minutes=1)
    spooled = {d["symbol"]: d for d in recorded.spooled}
    assert sorted(d["symbol"] for d in recorded.spooled) == sorted(SYMBOLS)
    # Books, levels and all (a quiet symbol synced just before the close may have had no event
    # since its snapshot: its decision is then a reason).
    assert any(usable(d) for d in spooled.values()), [(d["symbol"], d["reason"]) for d in spooled.values()]
    during = recorded.during_outage
    assert during["write_errors"] >= 1 and during["spooled_batches"] >= 1, during
    assert during["symbols_in_sync"] == len(SYMBOLS), during["symbols"]

    # Stored as spooled: each symbol's first decision of the outage close, field for field.
    first_stored = {b["symbol"]: b for batch in recorded.batches for b in books_of(batch)
                    if b["close"] == outage and not b["revised"]}
    assert first_stored == spooled
    # And read back as the runs read it once the next close is stored: the same decision, unless
    # the recorder withdrew it since (a book decided by the clock that no later event of its symbol
    # confirmed before the connection was lost: the test drops the connection after the outage,
    # and a quiet symbol may have had no event in between). A withdrawal says so, with no book.
    for book in recorded.stored_when_back:
        if book != spooled[book["symbol"]]:
            assert book["revised"] and not book["in_sync"] and "bids" not in book, book
            assert book["reason"].startswith("connection ") and "lost" in book["reason"], book

    books = stored_books(recorded.batches)
    for close in (outage, after):
        first = [b["symbol"] for batch in recorded.batches for b in books_of(batch)
                 if b["close"] == close and not b["revised"]]
        assert sorted(first) == sorted(SYMBOLS), (close, first)
        cell = [books[(symbol, close)] for symbol in SYMBOLS]
        assert any(usable(book) for book in cell), cell
        for book in cell:
            if usable(book):
                assert_true_book(simulator_process, book)
            else:
                assert book["reason"] and "bids" not in book, book
    if recorded.last_close == after:
        assert all(usable(books[(symbol, after)]) for symbol in SYMBOLS)
    assert recorded.spool_left == []
    assert recorded.status["write_errors"] >= 1 and recorded.status["spooled_batches"] == 0, recorded.status
