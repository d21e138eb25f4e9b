"""The mock HTTP providers now live in the package, so the wheel installs only `kt_trio`:
`kt_trio.mocks.http`. This name stays for code written against it."""

from kt_trio.mocks.http import *  # noqa: F403
from kt_trio.mocks.http import (  # noqa: F401
    HttpMockBehaviour,
    MockHttpUpstream,
    RecordedRequest,
    file_content,
    open_mock_http_upstream,
    serve_asgi,
)
