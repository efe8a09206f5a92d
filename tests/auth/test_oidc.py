"""Bearer JWTs against a real OIDC provider: what passes, and a coded refusal for each fault."""

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc import jwk
from pydantic import ValidationError

from mlcatalog.auth.oidc import (
    FIRST_FETCH_RETRY_SECONDS,
    ProviderUnavailable,
    TokenValidator,
    Unauthenticated,
    is_secure_url,
)
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.settings import AuthSettings
from tests.auth.conftest import AUDIENCE, CLIENT_ID, Provider, b64, unb64, with_header
from tests.realservers import free_port


@pytest.fixture
async def validator(provider: Provider) -> AsyncIterator[TokenValidator]:
    validator = TokenValidator(provider.settings())
    yield validator
    await validator.close()


async def refusal(validator: TokenValidator, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        await validator.principal(token)
    assert refused.value.code == "UNAUTHENTICATED"
    return refused.value.message


async def test_a_token_from_the_provider_becomes_its_principal(
    provider: Provider, validator: TokenValidator
) -> None:
    principal = await validator.principal(provider.token())
    assert principal == Principal(
        subject="alice",
        method=Method.BEARER,
        name="Alice Example",
        email="alice@example.org",
        groups=("ml-team", "auditors"),
    )


async def test_claim_names_are_settings(provider: Provider) -> None:
    validator = TokenValidator(
        provider.settings(subject_claim="email", name_claim="sub", groups_claim="name")
    )
    principal = await validator.principal(provider.token())
    await validator.close()
    assert (principal.subject, principal.name, principal.groups) == (
        "alice@example.org",
        "alice",
        ("Alice Example",),  # one string is a group of one
    )


async def test_the_keys_are_fetched_once_for_many_tokens(
    provider: Provider, validator: TokenValidator
) -> None:
    for _ in range(3):
        await validator.principal(provider.token())
    assert validator.jwks_fetches == 1


async def test_an_expired_token_is_refused(provider: Provider, validator: TokenValidator) -> None:
    assert "expired" in await refusal(validator, provider.token("expired"))


async def test_a_token_not_valid_yet_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    assert "not valid yet" in await refusal(validator, provider.token("future"))


async def test_a_token_for_another_audience_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    assert "not meant for this API" in await refusal(validator, provider.token("other-audience"))


async def test_a_token_from_another_issuer_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    # Signed by the same server, with the other issuer's key: its key id is not mlcatalog's.
    message = await refusal(validator, provider.token(issuer_id="elsewhere"))
    assert "'elsewhere' is not one of the provider's" in message


async def test_a_token_naming_another_issuer_with_a_good_signature_is_refused(
    provider: Provider,
) -> None:
    # A validator for the `rotated` issuer trusts its key, and that key signed this token, but
    # the token's `iss` names mlcatalog: only the issuer check stops it.
    settings = AuthSettings(issuer=provider.server.issuer("rotated"), audience=AUDIENCE)
    validator = TokenValidator(settings)
    message = await refusal(validator, provider.token(issuer_id="rotated"))
    await validator.close()
    assert f"not issued by {settings.issuer}" in message


async def test_a_tampered_token_is_refused(provider: Provider, validator: TokenValidator) -> None:
    header, payload, signature = provider.token().split(".")
    claims = json.loads(unb64(payload))
    forged = b64(json.dumps({**claims, "sub": "admin"}).encode())
    assert "signature does not verify" in await refusal(validator, f"{header}.{forged}.{signature}")


async def test_a_token_signed_by_another_key_under_a_known_key_id_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    other = provider.token(issuer_id="rotated")  # iss and aud are right; the key is not
    header, payload = with_header(other, kid="mlcatalog")
    signature = other.split(".")[2]
    assert "signature does not verify" in await refusal(
        validator, f"{header}.{payload}.{signature}"
    )


async def test_an_unsigned_token_is_refused(provider: Provider, validator: TokenValidator) -> None:
    header, payload = with_header(provider.token(), alg="none")
    assert "'none' are not accepted" in await refusal(validator, f"{header}.{payload}.")


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    # The algorithm-confusion attack: anyone can compute an HMAC with the published key.
    [published] = provider.jwks()["keys"]
    pem = jwk.import_key(published).as_pem()
    header, payload = with_header(provider.token(), alg="HS256")
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    message = await refusal(validator, f"{header}.{payload}.{b64(signature)}")
    assert "'HS256' are not accepted" in message


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c",
        "%%%.e30.sig",
        b64(b"[1]") + ".e30.sig",
        b64(b"[" * 5000) + ".e30.sig",  # nested deep enough to overflow the JSON parser
        "x" * 20_000,
    ],
)
async def test_a_malformed_token_is_refused(validator: TokenValidator, token: str) -> None:
    await refusal(validator, token)


class Rotation(httpx.AsyncBaseTransport):
    """The real provider, whose mlcatalog JWKS becomes another key set once ``rotated``.

    mock-oauth2-server keeps one key per issuer for its life and has no rotation endpoint, so
    the rotation is simulated here: after it, requests for mlcatalog's JWKS are answered by the
    server's JWKS of the `rotated` issuer (a real key, kid "rotated", that signs tokens whose
    `iss` is mlcatalog's). The validator sees what it would see when a provider rotates: the
    same jwks_uri, new keys.
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rotated = False
        self.jwks_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jwks"):
            self.jwks_requests += 1
            if self.rotated:
                request.url = request.url.copy_with(path="/rotated/jwks")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_new_key_id_fetches_the_keys_again_but_not_too_often(provider: Provider) -> None:
    transport = Rotation()
    offset = 0.0
    async with httpx.AsyncClient(transport=transport) as client:
        validator = TokenValidator(
            provider.settings(jwks_refetch_seconds=60),
            client=client,
            clock=lambda: time.time() + offset,
        )
        assert (await validator.principal(provider.token())).subject == "alice"
        new_key_token = provider.token(issuer_id="rotated")
        # Keys fetched just now: an unknown key id does not fetch them again yet.
        assert "not one of the provider's" in await refusal(validator, new_key_token)
        assert transport.jwks_requests == 1

        transport.rotated = True
        offset = 61.0
        assert (await validator.principal(new_key_token)).subject == "bob"
        assert transport.jwks_requests == 2
        # The new keys are cached: no fetch for the next token.
        assert (await validator.principal(new_key_token)).subject == "bob"
        assert transport.jwks_requests == 2


class Counting(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_unreachable_provider_is_a_refusal_that_says_so_and_is_not_hammered() -> None:
    settings = AuthSettings(issuer=f"http://127.0.0.1:{free_port()}/nowhere", audience=AUDIENCE)
    token = b64(b'{"alg": "RS256", "kid": "k"}') + ".e30.c2ln"
    transport = Counting()
    now = time.time()
    async with httpx.AsyncClient(transport=transport) as client:
        validator = TokenValidator(settings, client=client, clock=lambda: now)
        for _ in range(3):
            with pytest.raises(ProviderUnavailable, match="could not be read"):
                await validator.principal(token)
        assert transport.requests == 1  # the next attempt waits FIRST_FETCH_RETRY_SECONDS
        now += FIRST_FETCH_RETRY_SECONDS
        with pytest.raises(ProviderUnavailable):
            await validator.principal(token)
        assert transport.requests == 2


@pytest.mark.parametrize("algorithm", ["none", "HS256", "HS512"])
def test_settings_refuse_none_and_hmac(algorithm: str) -> None:
    with pytest.raises(ValidationError, match="refused"):
        AuthSettings(algorithms=("RS256", algorithm))


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(ValidationError, match="audience"):
        AuthSettings(issuer="https://login.example.org")


def test_a_default_token_lifetime_past_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="token_days"):
        AuthSettings(token_days=400, token_max_days=365)


@pytest.mark.parametrize("subject", ["token:ci", "cli:root", "local-dev"])
def test_a_subject_the_catalog_reserves_is_refused(subject: str) -> None:
    validator = TokenValidator(AuthSettings(issuer="https://idp.example", audience="mlcatalog"))
    with pytest.raises(Unauthenticated, match="reserved"):
        validator._principal({"sub": subject})


# ---- the token's type, its authorized party, a verified email, https in production ----


async def test_an_access_token_typed_at_jwt_is_accepted(
    provider: Provider, validator: TokenValidator
) -> None:
    assert (await validator.principal(provider.token("at-jwt"))).subject == "alice"


async def test_a_token_typed_as_something_else_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    message = await refusal(validator, provider.token("logout"))
    assert "not an access token (its type is 'logout+jwt')" in message


@pytest.mark.parametrize("typ", ["id_token+jwt", "secevent+jwt", "", 1])
async def test_a_header_typing_the_token_otherwise_is_refused_before_its_signature(
    provider: Provider, validator: TokenValidator, typ: object
) -> None:
    header, payload = with_header(provider.token(), typ=typ)
    assert "not an access token" in await refusal(validator, f"{header}.{payload}.sig")


async def test_an_id_token_typed_as_an_access_token_is_refused_before_its_signature(
    provider: Provider, validator: TokenValidator
) -> None:
    header, payload = with_header(provider.token(), typ="at+jwt")
    with pytest.raises(Unauthenticated, match=r"the ID token is not an ID token \(its type is"):
        await validator.id_token_principal(f"{header}.{payload}.sig", client_id=CLIENT_ID, nonce="")


async def test_an_id_token_for_several_clients_must_be_issued_to_this_one(
    provider: Provider, validator: TokenValidator
) -> None:
    token = provider.token("id-token-for-another")
    with pytest.raises(Unauthenticated, match="issued to 'another-app', not to this API") as error:
        await validator.id_token_principal(token, client_id=CLIENT_ID, nonce="n-1")
    # The authorized parties are for bearer tokens: an ID token is for this app's client only.
    assert "AUTHORIZED_PARTIES" not in error.value.message
    others = TokenValidator(provider.settings(authorized_parties=("another-app",)))
    with pytest.raises(Unauthenticated, match="issued to 'another-app'"):
        await others.id_token_principal(token, client_id=CLIENT_ID, nonce="n-1")
    await others.close()


@pytest.mark.parametrize("typ", ["JWT", "at+JWT", "application/at+jwt"])
async def test_the_access_token_types_are_read_without_case_or_application_prefix(
    provider: Provider, validator: TokenValidator, typ: str
) -> None:
    # The header changed, so the signature fails: the type check let it through to there.
    header, payload = with_header(provider.token(), typ=typ)
    assert "signature does not verify" in await refusal(validator, f"{header}.{payload}.sig")


async def test_a_token_for_several_audiences_issued_to_another_client_is_refused(
    provider: Provider, validator: TokenValidator
) -> None:
    message = await refusal(validator, provider.token("dashboard-for-several"))
    assert "issued to 'dashboard', not to this API" in message
    assert "MLCATALOG_AUTH__AUTHORIZED_PARTIES" in message


async def test_a_token_for_several_audiences_issued_to_this_api_is_accepted(
    provider: Provider, validator: TokenValidator
) -> None:
    assert (await validator.principal(provider.token("us-for-several"))).subject == "alice"


async def test_a_token_for_this_api_alone_may_come_from_any_client(
    provider: Provider, validator: TokenValidator
) -> None:
    assert (await validator.principal(provider.token("dashboard-for-us"))).subject == "alice"


async def test_a_client_the_settings_allow_may_hold_a_token_for_several_audiences(
    provider: Provider,
) -> None:
    validator = TokenValidator(provider.settings(authorized_parties=("dashboard",)))
    principal = await validator.principal(provider.token("dashboard-for-several"))
    await validator.close()
    assert principal.subject == "alice"


async def test_an_unverified_email_cannot_be_the_subject(provider: Provider) -> None:
    validator = TokenValidator(provider.settings(subject_claim="email"))
    message = await refusal(validator, provider.token("unverified-email"))
    assert (await validator.principal(provider.token())).subject == "alice@example.org"
    await validator.close()
    assert "email is not verified" in message


async def test_an_unverified_email_is_still_the_principal_s_email_when_not_its_subject(
    provider: Provider, validator: TokenValidator
) -> None:
    principal = await validator.principal(provider.token("unverified-email"))
    assert (principal.subject, principal.email) == ("alice", "alice@example.org")


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://login.example.org/realms/ml", True),
        ("http://127.0.0.1:8080/realms/ml", True),
        ("http://[::1]:8080/", True),
        ("http://localhost/", True),
        ("http://login.example.org/realms/ml", False),
        ("http://10.0.0.5/", False),
        ("ftp://login.example.org/", False),
        ("login.example.org", False),
    ],
)
def test_only_https_or_loopback_is_secure(url: str, secure: bool) -> None:
    assert is_secure_url(url) is secure


class PlainJwksUri(httpx.AsyncBaseTransport):
    """The real provider, whose discovery document names a jwks_uri over plain http."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.jwks_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/openid-configuration"):
            await response.aread()
            document = {**response.json(), "jwks_uri": "http://login.example.org/jwks"}
            return httpx.Response(200, json=document)
        self.jwks_requests += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_in_production_keys_over_plain_http_are_refused(provider: Provider) -> None:
    transport = PlainJwksUri()
    async with httpx.AsyncClient(transport=transport) as client:
        validator = TokenValidator(provider.settings(), client=client, require_https=True)
        with pytest.raises(ProviderUnavailable, match=r"login\.example\.org/jwks is not https"):
            await validator.principal(provider.token())
    assert transport.jwks_requests == 0


async def test_a_validator_opens_its_client_at_the_first_fetch_and_closes_it(
    provider: Provider,
) -> None:
    validator = TokenValidator(provider.settings())
    assert validator._client is None  # nothing to leak if the app never starts
    await validator.principal(provider.token())
    client = validator._client
    assert client is not None and not client.is_closed
    await validator.close()
    assert client.is_closed
