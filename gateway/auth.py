"""JWT bearer tokens (HS256): minting, verification, and the caller's identity."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from gateway.errors import Unauthenticated

SCOPES = (
    "read",
    "app-interface:read",
    "reconcile:dry-run",
    "reconcile:apply",
    "events",
    "notify",
    "admin",
)
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Identity:
    """Who is calling and what they may do."""

    subject: str
    scopes: frozenset[str]
    anonymous: bool = False

    def has_scope(self, scope: str) -> bool:
        """True when the caller holds `scope` (or `admin`, which implies every scope)."""
        return scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Identity(subject="anonymous", scopes=frozenset(SCOPES), anonymous=True)


def mint_token(secret: str, subject: str, scopes: Iterable[str], expires_days: int) -> str:
    """A signed token for `subject` with `scopes`, valid for `expires_days` days."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; known: {', '.join(SCOPES)}")
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": subject,
        "scopes": sorted(set(scopes)),
        "iat": now,
        "exp": now + dt.timedelta(days=expires_days),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Turns an `Authorization` header into an Identity, or refuses it."""

    def __init__(self, secret: str | None, revoked_subjects: Iterable[str] = ()) -> None:
        self._secret = secret
        self._revoked = frozenset(revoked_subjects)

    @property
    def enabled(self) -> bool:
        """False when no secret is configured: every caller is anonymous (loopback only)."""
        return self._secret is not None

    def identify(self, authorization: str | None) -> Identity:
        """The caller behind `authorization` ("Bearer <jwt>")."""
        if self._secret is None:
            return ANONYMOUS
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("malformed Authorization header; expected 'Bearer <token>'")
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature invalid") from None
        except jwt.PyJWTError:
            raise Unauthenticated("token malformed") from None
        subject = str(claims["sub"])
        if subject in self._revoked:
            raise Unauthenticated("token revoked")
        scopes = claims.get("scopes", [])
        if not isinstance(scopes, list):
            raise Unauthenticated("token malformed")
        return Identity(subject=subject, scopes=frozenset(str(s) for s in scopes))
