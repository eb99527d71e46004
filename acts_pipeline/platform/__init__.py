"""Running the platform: the `acts-pipeline` command and what it starts and tends.

    cli            acts-pipeline dev | symbols | coverage | spool | reload-code | record | check-instance
                   | simulate-exchange
    processes      the embedded database and the simulator as child processes
    dev_output     what `acts-pipeline dev` shows of Dagster's output
    window_reload  the hourly code-location reload that moves the partition window, and the warm-up
    event_log      the instance's SQLite event log with a one-transaction batch write (dagster.yaml)
    postgres_storage  the production instance's storage: dagster-postgres from one postgresql:// URL
                   (deploy/dagster.yaml, DAGSTER_PG_URL)
    instance_settings  the instance settings ACTS relies on, checked by dev and check-instance
"""
