"""A scheduled DAG, unpaused from the start, whose first run is far in the future: it has a next run, no runs."""

from datetime import datetime, timezone

from airflow.sdk import dag, task


@dag(dag_id="nightly_dag", schedule="0 2 * * *", start_date=datetime(2099, 1, 1, tzinfo=timezone.utc),
     catchup=False, is_paused_upon_creation=False, tags=["lakedeck-tests"])
def nightly_dag():
    @task
    def tick() -> None:
        print("tick")

    tick()


nightly_dag()
