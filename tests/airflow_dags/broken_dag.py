"""A DAG file that does not import: Airflow reports it as an import error."""

from airflow.sdk import dag  # noqa: F401

raise ImportError("lakedeck test: this DAG file is broken on purpose")
