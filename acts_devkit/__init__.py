"""What the tests and the benchmarks share, and production never runs.

    platform    `acts-pipeline dev` run as a user runs it: a folder like a fresh clone, a clean
                environment, the real process group, its log and GraphQL, Ctrl-C
    servers     the embedded database with its test commands on (fail points)

It is installed with the project (`pip install -e .`) so that `benchmarks/` and
`acts_pipeline_tests/` import it alike; nothing in `acts_pipeline` imports it.
"""
