"""DAGSTER_PG_URL as operators write it (`postgresql://...`) reaches dagster-postgres with the
driver it runs on (psycopg2): SQLAlchemy 2.1 would take psycopg 3 for a plain `postgresql://`."""

import pytest
from sqlalchemy.engine import make_url

from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.platform.postgres_storage import PostgresStorage, sqlalchemy_url


@pytest.mark.parametrize("url", [
    "postgresql://acts:p%40ss@db.internal:5432/dagster",
    "postgres://acts:p%40ss@db.internal:5432/dagster",
    "postgresql+psycopg2://acts:p%40ss@db.internal:5432/dagster",
    " postgresql://acts:p%40ss@db.internal:5432/dagster\n",
])
def test_every_spelling_of_a_postgres_url_gets_psycopg2_and_keeps_everything_else(url):
    assert sqlalchemy_url(url) == "postgresql+psycopg2://acts:p%40ss@db.internal:5432/dagster"
    parsed = make_url(sqlalchemy_url(url))
    assert (parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "postgresql+psycopg2", "acts", "p@ss", "db.internal", 5432, "dagster")


def test_query_parameters_such_as_sslmode_are_kept():
    assert sqlalchemy_url("postgresql://acts:pw@db/dagster?sslmode=require&connect_timeout=5") == \
        "postgresql+psycopg2://acts:pw@db/dagster?sslmode=require&connect_timeout=5"


@pytest.mark.parametrize(("url", "message"), [
    ("", "DAGSTER_PG_URL is empty: set it to the instance's database, e.g. postgresql://acts:<password>@db.internal:5432/dagster"),
    ("mysql://acts:s3cret@db/dagster", "DAGSTER_PG_URL must be a postgresql:// URL such as postgresql://acts:<password>@"
     "db.internal:5432/dagster, got mysql://***@db/dagster (scheme 'mysql'; dagster-postgres runs on psycopg2)"),
    ("postgresql+psycopg://acts:s3cret@db/dagster", "(scheme 'postgresql+psycopg'; dagster-postgres runs on psycopg2)"),
    ("db.internal:5432/dagster", "(scheme 'missing'; dagster-postgres runs on psycopg2)"),
    ("postgresql://acts:s3cret@db.internal:5432", "DAGSTER_PG_URL (postgresql://***@db.internal:5432) has no database"),
    ("postgresql://acts:s3cret@/dagster", "has no host"),
])
def test_anything_else_is_refused_naming_the_variable_never_the_password(url, message):
    with pytest.raises(ConfigurationError) as refused:
        sqlalchemy_url(url)
    assert message in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_the_storage_is_configured_by_one_url():
    assert set(PostgresStorage.config_type()) == {"postgres_url", "should_autocreate_tables"}
