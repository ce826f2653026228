"""The console's tests: each test's outcome is kept on its item, so that a browser test's
fixture can photograph the pages when the test failed."""
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
