"""The mock Realtime / Responses WebSocket provider now lives in the package, so the wheel installs
only `kt_trio`: `kt_trio.mocks.realtime`. This name stays for the scenario suite's users and for
code written against it (`python -m conformance.mock_upstream` still runs it)."""

from kt_trio.mocks.realtime import *  # noqa: F403
from kt_trio.mocks.realtime import __all__, main  # noqa: F401

if __name__ == "__main__":
    main()
