"""Azure OpenAI's inbound URL shapes, mapped onto the gateway's own routes (pure).

Azure clients (`openai.AzureOpenAI`, the Node SDK's `AzureOpenAI`) address a resource, not
`/v1`: `/openai/deployments/{deployment}/chat/completions?api-version=...`,
`/openai/deployments/{deployment}/embeddings`, `/openai/responses`, and for Realtime
`/openai/realtime?api-version=...&deployment=...` (DESIGN.md "What Keeptrusts users type and
call"). Azure's newer v1 surface, `/openai/v1/...`, is the OpenAI path under a prefix. Each maps to
the route that serves it, with the deployment that picks the target (`kt_trio.config.routing`).
`api-version` and `deployment` are Azure's own parameters: they choose, they are not forwarded.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode

from attrs import frozen

PREFIX = "/openai/"
_DEPLOYMENT_ROUTES = {"chat/completions": "/v1/chat/completions", "embeddings": "/v1/embeddings"}
_PLAIN_ROUTES = {"/openai/responses": "/v1/responses", "/openai/realtime": "/v1/realtime"}
AZURE_QUERY_PARAMS = frozenset({"api-version", "deployment"})
# The ASGI scope key under which the HTTP door hands an Azure deployment to the routes.
AZURE_DEPLOYMENT = "kt_trio.azure_deployment"


@frozen
class AzureRoute:
    path: str  # the gateway route that serves it, e.g. /v1/chat/completions
    deployment: str | None  # the Azure deployment named in the path or query, if any


def azure_route(path: str, query: str = "") -> AzureRoute | None:
    """The route an Azure-shaped `path` maps to, or None when `path` is not Azure-shaped."""
    if not path.startswith(PREFIX):
        return None
    deployment = _query_value(query, "deployment")
    plain = _PLAIN_ROUTES.get(path.rstrip("/"))
    if plain is not None:
        return AzureRoute(plain, deployment)
    if path.startswith("/openai/v1/"):
        return AzureRoute(path[len("/openai") :], deployment)
    parts = path[len(PREFIX) :].split("/", 2)
    if len(parts) == 3 and parts[0] == "deployments" and parts[1]:
        route = _DEPLOYMENT_ROUTES.get(parts[2].rstrip("/"))
        if route is not None:
            return AzureRoute(route, unquote(parts[1]))
    return None


def without_azure_params(query: str) -> str:
    """`query` less Azure's routing parameters, for the upstream of a non-Azure target."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in AZURE_QUERY_PARAMS])


def _query_value(query: str, name: str) -> str | None:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name and value:
            return value
    return None
