"""seats workload: decrement-if-positive from a capacity: never oversell.

    counterbench run -s <scenario>            (the harness prepares, loads, checks)
    locust -f locustfiles/seats.py --scenario <scenario> --target-url URL [--headless -u 32 -t 10s]
"""

from locust import task

from harness.locustfile import CounterUser


class SeatsUser(CounterUser):
    workload = "seats"

    @task
    def op(self) -> None:
        self.step()
