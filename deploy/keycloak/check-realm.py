"""Log in to the example realm as its two users and validate their access tokens as the API does.

A manual check of mlcatalog-realm.json against a running Keycloak, started without the proxy:
    OIDC_CLIENT_SECRET=client-secret DEMO_USER_PASSWORD=demo-password \
    KC_HOSTNAME=http://127.0.0.1:18080 bin/kc.sh start-dev --import-realm --http-port 18080
(the realm file copied into Keycloak's data/import/), then, from the repository root:
    .venv/bin/python deploy/keycloak/check-realm.py
It walks the login form (authorization code with PKCE), checks that Keycloak refuses the flow
without PKCE, and feeds each access token to mlcatalog's TokenValidator configured as
compose.yaml configures the API (audience mlcatalog, subject claim preferred_username).
"""

import asyncio
import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from mlcatalog.auth.oidc import TokenValidator
from mlcatalog.settings import AuthSettings

ISSUER = "http://127.0.0.1:18080/realms/mlcatalog"
REDIRECT = "https://catalog.localhost/auth/callback"
SECRET, PASSWORD = "client-secret", "demo-password"
USERS = {"alice@example.com": ("ml-platform",), "bob@example.com": ("data-science",)}


def access_token(client: httpx.Client, user: str) -> str:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    discovery = client.get(f"{ISSUER}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == ISSUER, discovery["issuer"]
    query = {"client_id": "mlcatalog", "response_type": "code", "scope": "openid"}
    query |= {"redirect_uri": REDIRECT, "state": "check"}
    refused = client.get(discovery["authorization_endpoint"], params=query)
    assert "code_challenge_method" in refused.headers["location"], "PKCE is not required"
    query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    form = client.get(discovery["authorization_endpoint"], params=query)
    match = re.search(r'action="([^"]+)"', form.text)
    assert match, form.text[:500]
    # Keycloak marks its cookies Secure; this check talks plain HTTP, so it sends them by hand.
    cookies = "; ".join(f"{name}={value}" for name, value in form.cookies.items())
    login = client.post(
        html.unescape(match.group(1)),
        data={"username": user, "password": PASSWORD},
        headers={"Cookie": cookies},
    )
    assert login.status_code == 302 and login.headers["location"].startswith(REDIRECT), login
    code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    exchange |= {"client_id": "mlcatalog", "client_secret": SECRET, "code_verifier": verifier}
    tokens = client.post(discovery["token_endpoint"], data=exchange)
    assert tokens.status_code == 200, tokens.text
    token: str = tokens.json()["access_token"]
    return token


async def main() -> None:
    settings = AuthSettings(issuer=ISSUER, audience="mlcatalog", subject_claim="preferred_username")
    validator = TokenValidator(settings)
    try:
        with httpx.Client(timeout=30) as client:
            for user, groups in USERS.items():
                principal = await validator.principal(access_token(client, user))
                assert (principal.subject, principal.groups) == (user, groups), principal
                print(f"ok: {principal}")
    finally:
        await validator.close()


if __name__ == "__main__":
    asyncio.run(main())
