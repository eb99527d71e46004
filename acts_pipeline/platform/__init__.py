"""Running the platform: the `acts-pipeline` command and what it starts and tends.

    cli            acts-pipeline dev | symbols | coverage | spool | reload-code | simulate-exchange
    processes      the embedded database and the simulator as child processes
    dev_output     what `acts-pipeline dev` shows of Dagster's output
    window_reload  the hourly code-location reload that moves the partition window, and the warm-up
    event_log      the instance's SQLite event log with a one-transaction batch write (dagster.yaml)
"""
