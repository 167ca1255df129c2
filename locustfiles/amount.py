"""amount workload: +random integer amounts (cents collected): the total must add up.

    counterbench run -s <scenario>            (the harness prepares, loads, checks)
    locust -f locustfiles/amount.py --scenario <scenario> --target-url URL [--headless -u 32 -t 10s]
"""

from locust import task

from harness.locustfile import CounterUser


class AmountUser(CounterUser):
    workload = "amount"

    @task
    def op(self) -> None:
        self.step()
