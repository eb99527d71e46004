"""What `acts-pipeline dev` shows of Dagster's output: warnings, errors, tracebacks and anything
unrecognised, never the known noise. `dagster_dev_output.txt` is the real output of `dagster dev`
under `acts-pipeline dev --simulated` (before its output was filtered): start-up, three minute
runs, the hourly reload at 00:00:10, and a stop in which the group-wide Ctrl-C interrupted
Dagster's compute-log watchers (two KeyboardInterrupt tracebacks, written between other lines)."""

import io
from pathlib import Path

import pytest

from acts_pipeline.platform.dev_output import DagsterOutput, plain, shown_lines

CAPTURED = (Path(__file__).resolve().parents[1] / "data" / "dagster_dev_output.txt").read_text().splitlines()
NOISE = ("will not be used to configure Dagster", "Use 'dg dev' instead", "BetaWarning", "PreviewWarning",
         "No cursor for event type")


def test_the_captured_output_holds_every_kind_of_noise():
    for noise in NOISE:
        assert any(noise in line for line in CAPTURED), noise
    assert sum("BetaWarning" in line for line in CAPTURED) == 18  # 3 per process that loads the definitions


def test_none_of_the_noise_and_no_record_below_warning_is_shown():
    shown = [plain(line) for line in shown_lines(CAPTURED)]
    assert [line for line in shown if any(noise in line for noise in NOISE)] == []
    assert [line for line in shown if " - INFO - " in line or " - DEBUG - " in line] == [
        # written into the middle of a traceback's line by another process: shown with the traceback
        "    2026-12-01 00:00:39 +0000 - dagster - INFO - Shutting down Dagster services..."]
    # the source lines under the warnings (`  return fn(*args, **kwargs)`) go with them
    assert not any("return fn(" in line or "return callback(" in line or "spec = AssetCheckSpec(" in line
                   for line in shown)


def test_tracebacks_are_shown_whole_even_with_other_lines_in_between():
    shown = [plain(line) for line in shown_lines(CAPTURED)]
    assert shown.count("Traceback (most recent call last):") == 2
    assert shown.count("KeyboardInterrupt") == 2
    assert sum("watch_orphans.py" in line for line in shown) == 4
    assert shown.count("    time.sleep(1)") == 2


REAL_FORMAT_ERRORS = [
    # a step failure as the run process prints it, with its stack trace
    "2026-12-01 00:06:05 +0000 - dagster - ERROR - __anonymous_asset_job_minute_sensor - e4501027 - 13254 - "
    "order_book_snapshot - STEP_FAILURE - Execution of step \"order_book_snapshot\" failed.",
    "",
    "acts_pipeline.core.errors.BannedError: no request to Binance before 00:09:00 UTC",
    "",
    "Stack Trace:",
    '  File "/work/main/acts_pipeline/orchestration/assets.py", line 120, in order_book_snapshot',
    # a warning of the project's own, in the run log
    "\x1b[32m2026-12-01 00:06:05 +0000\x1b[0m - dagster - \x1b[34mWARNING\x1b[0m - __anonymous_asset_job_minute_sensor - "
    "e4501027 - order_book_snapshot - 429 from Binance: no request before 00:06:09",
    # a sensor that raised, as the daemon logs it
    "2026-12-01 00:06:05 +0000 - dagster.daemon.SensorDaemon - ERROR - Sensor minute_sensor failed",
    # a Python warning that is not one of Dagster's beta or preview notices
    "/work/main/.venv/lib/python3.11/site-packages/websockets/legacy/__init__.py:6: DeprecationWarning: "
    "websockets.legacy is deprecated",
    "  warnings.warn(  # deprecated in 14.0 - 2024-11-09",
    # anything else a process prints
    "Fatal Python error: Segmentation fault",
]


def test_errors_warnings_and_unrecognised_lines_are_shown():
    assert list(shown_lines(REAL_FORMAT_ERRORS)) == REAL_FORMAT_ERRORS


@pytest.mark.parametrize("level", ["WARNING", "ERROR", "CRITICAL"])
def test_a_record_that_only_mentions_a_noise_word_is_shown(level):
    record = f"2026-12-01 00:06:05 +0000 - dagster - {level} - the code location failed: BetaWarning was not the cause"
    assert list(shown_lines([record])) == [record]


def test_the_full_output_goes_to_the_log_and_the_terminal_gets_the_shown_lines(tmp_path):
    stream = io.BytesIO(("\n".join(CAPTURED + REAL_FORMAT_ERRORS) + "\n").encode())
    shown = []
    output = DagsterOutput(stream, tmp_path / "dagster.log", shown.append).start()
    output.close()
    log = (tmp_path / "dagster.log").read_text().splitlines()
    assert log[0].startswith("---- acts-pipeline dev started dagster dev at ")
    assert log[1:] == [plain(line) for line in CAPTURED + REAL_FORMAT_ERRORS]  # all of it, without colors
    assert shown == list(shown_lines(CAPTURED + REAL_FORMAT_ERRORS))


def test_the_stream_is_read_to_its_end_when_the_log_cannot_be_written(tmp_path):
    (tmp_path / "dagster.log").mkdir()  # not a file
    data = ("\n".join(CAPTURED) + "\n").encode()
    stream = io.BytesIO(data)
    shown = []
    DagsterOutput(stream, tmp_path / "dagster.log", shown.append).start().close()
    assert shown[0].startswith(f"warning: Dagster's output is not kept in {tmp_path / 'dagster.log'} (")
    assert shown[1:] == list(shown_lines(CAPTURED))
    assert stream.tell() == len(data)  # a pipe nobody reads would block Dagster's processes


def test_the_stream_is_read_to_its_end_when_the_terminal_is_gone(tmp_path):
    data = ("\n".join(CAPTURED) + "\n").encode()
    stream = io.BytesIO(data)

    def show(line):
        raise BrokenPipeError(32, "Broken pipe")

    DagsterOutput(stream, tmp_path / "dagster.log", show).start().close()
    assert stream.tell() == len(data)
    assert len((tmp_path / "dagster.log").read_text().splitlines()) == len(CAPTURED) + 1


def test_a_preview_warning_dagster_attributes_to_our_module_is_noise_too():
    """`daily_coverage`'s partitioned check spec is built in our module, so Dagster's warning names
    our file (seen in the e2e terminal, as a log record and as Python's own warning line)."""
    lines = [
        "\x1b[32m2026-12-02 01:28:52 +0000\x1b[0m - dagster - \x1b[34mWARNING\x1b[0m - /work/main/acts_pipeline/"
        "orchestration/coverage_assets.py:120: PreviewWarning: Specifying a partitions_def on an AssetCheckSpec is "
        "currently in preview, and may have breaking changes in patch version releases.",
        "  check_specs=[AssetCheckSpec(",
        "",
        "/work/main/acts_pipeline/orchestration/coverage_assets.py:120: PreviewWarning: Specifying a partitions_def on "
        "an AssetCheckSpec is currently in preview.",
        "  check_specs=[AssetCheckSpec(",
        "ACTS stopped: Dagster, the embedded database and the simulator are down",
    ]
    assert [plain(line) for line in shown_lines(lines)] == [
        "ACTS stopped: Dagster, the embedded database and the simulator are down"]
