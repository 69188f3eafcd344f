from tests.cases.conftest import clinic, nurse  # noqa: F401 - shared fixtures
