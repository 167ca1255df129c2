"""unique-ids workload: +1 handing out ids: no id may be handed out twice.

    counterbench run -s <scenario>            (the harness prepares, loads, checks)
    locust -f locustfiles/unique_ids.py --scenario <scenario> --target-url URL [--headless -u 32 -t 10s]
"""

from locust import task

from harness.locustfile import CounterUser


class UniqueIdsUser(CounterUser):
    workload = "unique-ids"

    @task
    def op(self) -> None:
        self.step()
