"""One task that logs a known line and fails, without retries: its run ends failed."""

import logging
from datetime import datetime

from airflow.sdk import dag, task

MARKER = "lakedeck-marker: the source table [/raw/orders] is missing"


@dag(dag_id="failing_dag", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
     default_args={"retries": 0}, tags=["lakedeck-tests"])
def failing_dag():
    @task
    def load_orders() -> None:
        logging.getLogger(__name__).error(MARKER)
        raise RuntimeError("orders not loaded")

    load_orders()


failing_dag()
