"""counter workload: +1 on one hot key: no acknowledged increment may be lost.

    counterbench run -s <scenario>            (the harness prepares, loads, checks)
    locust -f locustfiles/counter.py --scenario <scenario> --target-url URL [--headless -u 32 -t 10s]
"""

from locust import task

from harness.locustfile import CounterUser


class IncrementUser(CounterUser):
    workload = "counter"

    @task
    def op(self) -> None:
        self.step()
