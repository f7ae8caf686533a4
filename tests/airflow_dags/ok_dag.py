"""Two quick tasks that succeed: a run of it ends in success within seconds."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="ok_dag", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["lakedeck-tests"])
def ok_dag():
    @task
    def extract() -> int:
        print("extracting 3 rows")
        return 3

    @task
    def load(rows: int) -> None:
        print(f"loaded {rows} rows")

    load(extract())


ok_dag()
