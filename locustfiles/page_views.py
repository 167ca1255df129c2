"""page-views workload: +1 on user:<id>:<date> keys with skewed popularity: reconciled per key.

    counterbench run -s <scenario>            (the harness prepares, loads, checks)
    locust -f locustfiles/page_views.py --scenario <scenario> --target-url URL [--headless -u 32 -t 10s]
"""

from locust import task

from harness.locustfile import CounterUser


class PageViewsUser(CounterUser):
    workload = "page-views"

    @task
    def op(self) -> None:
        self.step()
