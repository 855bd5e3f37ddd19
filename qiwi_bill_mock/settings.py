"""Settings of the mock: merchants, unknown-behaviour switches, notifier schedule, faults.

Everything here is a frozen attrs value object, so one `Settings` can be shared by the store,
the notifier and every worker process (it round-trips through `to_json` / `from_json`).
"""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import asdict, define, field, validators

__all__ = [
    "BROKEN_BEHAVIOURS",
    "DEFAULT_RETRY_SCHEDULE",
    "NOTIFIABLE_STATUSES",
    "Fault",
    "Merchant",
    "Settings",
    "SettingsError",
    "demo_merchant",
    "site_id_from_secret_key",
]

# The documented legacy schedule (bill-payments-docs, notifications before v1, 2017-12..2018-03):
# 36 attempts 15 minutes apart, then 15 attempts 60 minutes apart, 24 hours in all. Each entry is
# the delay before the next retry, in (unscaled) seconds.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (15 * 60.0,) * 36 + (60 * 60.0,) * 15

#: Statuses that can trigger a notification. QIWI documents only `PAID`; `REJECTED` / `EXPIRED`
#: are opt-in (the P2P key setup speaks of "bill status changes", which is not proof).
NOTIFIABLE_STATUSES = frozenset({"PAID", "REJECTED", "EXPIRED"})

#: Deliberately broken behaviours, for the contract suite's self-test (issue 5). Off by default.
BROKEN_BEHAVIOURS = frozenset(
    {
        "refund_500",  # 500 on create refund
        "amount_as_number",  # bill amount.value as a JSON number
        "no_trace_id",  # error bodies without traceId
        "skip_auth_on_get",  # GET bill ignores the key
        "wrong_status_code",  # create bill answers 201
        "datetime_without_offset",  # creationDateTime without an offset
    }
)


class SettingsError(ValueError):
    """Invalid mock settings (unknown broken behaviour, duplicate merchant, bad fault...)."""


def _secret_repr(_: str) -> str:
    return "'***'"


@define(frozen=True, kw_only=True)
class Merchant:
    """One merchant known to the mock.

    Args:
        site_id: The merchant's `siteId`, echoed in every bill (a string, e.g. `"270305"`).
        secret_key: The secret API key: the bearer token, and the HMAC key of notifications.
        public_key: The public key used by the payment form's create flow.
        notify_url: Where notifications are POSTed; `None` sends none.
    """

    site_id: str = field(validator=validators.min_len(1))
    secret_key: str = field(validator=validators.min_len(1), repr=_secret_repr)
    public_key: str = field(validator=validators.min_len(1))
    notify_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (contains the secret; used only to hand settings to worker processes)."""
        return asdict(self)


def site_id_from_secret_key(secret_key: str) -> str | None:
    """The site id inside a real-format QIWI secret key, if it decodes to one.

    Real keys are base64 of JSON (docs/sources.md): P2P keys carry
    `data.payin_merchant_site_uid`, Kassa keys `data.merchant_id`.
    """
    try:
        padded = secret_key + "=" * (-len(secret_key) % 4)
        data = json.loads(base64.b64decode(padded, validate=False))["data"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(data, dict):
        return None
    for key in ("payin_merchant_site_uid", "merchant_id"):
        value = data.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def demo_merchant(*, site_id: str = "demo-00", notify_url: str | None = None) -> Merchant:
    """A merchant with fresh random keys in QIWI's P2P key format (base64 of JSON)."""
    payload = {
        "version": "P2P",
        "data": {"payin_merchant_site_uid": site_id, "user_id": "79000000000", "secret": secrets.token_hex(32)},
    }
    secret_key = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    public_key = "48e7qUxn9T7RyYE1MVZswX1FRSbE6iyCj2gCRwwF3Dnh5XrasNTx3BGPiMsyXQFNKQhvukniQG8RTVhYm3iP" + (
        secrets.token_hex(4)
    )
    return Merchant(site_id=site_id, secret_key=secret_key, public_key=public_key, notify_url=notify_url)


def _check_probability(_: object, attribute: Any, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"fault {attribute.name} must be between 0 and 1, got {value!r}")


@define(frozen=True, kw_only=True)
class Fault:
    """Fault injection for one route (or all), for users' resilience tests. Off unless configured.

    Args:
        route: An operationId (`createBill`, `getBill`, `rejectBill`, `createRefund`, `getRefund`)
            or `*` for all five API operations. `/_mock/` controls are never faulted.
        latency: Seconds added before the request is handled.
        error_rate: Share of requests answered 503 with QIWI's error body.
        throttle_rate: Share of requests answered 429 with QIWI's error body.
        drop_rate: Share of requests whose connection is dropped before any answer.
    """

    route: str = "*"
    latency: float = field(default=0.0, validator=validators.ge(0.0))
    error_rate: float = field(default=0.0, validator=_check_probability)
    throttle_rate: float = field(default=0.0, validator=_check_probability)
    drop_rate: float = field(default=0.0, validator=_check_probability)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse `route=createBill,latency=0.2,error=0.1,throttle=0.05,drop=0.01`."""
        names = {"route": "route", "latency": "latency", "error": "error_rate", "throttle": "throttle_rate"}
        names["drop"] = "drop_rate"
        kwargs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in names:
                raise SettingsError(f"bad fault item {part!r}; expected route=, latency=, error=, throttle=, drop=")
            name = names[key.strip()]
            try:
                kwargs[name] = value.strip() if name == "route" else float(value)
            except ValueError:
                raise SettingsError(f"fault {key.strip()} must be a number, got {value.strip()!r}") from None
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for `Settings.to_json`."""
        return asdict(self)


_OPERATIONS = frozenset({"*", "createBill", "getBill", "rejectBill", "createRefund", "getRefund"})


def _to_merchants(value: Iterable[Merchant]) -> tuple[Merchant, ...]:
    return tuple(value)


def _to_faults(value: Iterable[Fault]) -> tuple[Fault, ...]:
    return tuple(value)


def _to_frozenset(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@define(frozen=True, kw_only=True)
class Settings:
    """Everything configurable in the mock. `Settings()` is a one-merchant demo with QIWI's defaults.

    Args:
        merchants: The merchants; with none, one `demo_merchant()` with random keys is created.
        public_url: Base URL of the mock as customers reach it; `payUrl` is `{public_url}/form/?invoice_uid=...`.
            `None` (the default): the scheme and `Host` of each API request, so `payUrl` points where the client
            reached the mock (a random port included).
        db_path: SQLite file; `None` keeps everything in memory (lost on exit, one process only).
        db_owner: This store alone uses `db_path` (the CLI with one worker): reads then skip checking for other
            connections' commits. Enforced: an owner holds an exclusive lock on `<db_path>-lock`, every other
            store a shared one, and a store that cannot get its lock refuses to open (`DatabaseInUse`).
        strict_idempotency: A repeated create with a different body answers 409 instead of the stored bill.
        unauthorized_body: The 401 answer's body: `"empty"` (the default: what QIWI's Java SDK's live test expects,
            see `errors.py`) or `"json"` (QIWI's `auth.unauthorized` error body).
        empty_unauthorized_body: Deprecated: `True` is `unauthorized_body="empty"`, `False` `"json"`.
        accepted_currencies: Currencies a bill may be issued in (QIWI P2P: RUB and KZT).
        notify_statuses: Bill statuses that send a notification (documented: PAID only).
        retry_schedule: Delays, in seconds before scaling, between delivery attempts.
        time_scale: Multiplies every retry delay and the expiry lag (0.001 turns 15 min into 0.9 s).
        expiry_lag: Seconds after `expirationDateTime` before a WAITING bill reads as EXPIRED.
        sweep_interval: Wall-clock seconds between sweeps that expire overdue bills.
        notify_timeout: Seconds before a notification attempt is abandoned as failed.
        faults: Fault injection rules, off by default.
        fault_seed: Seed for fault injection's random choices (reproducible runs).
        broken: Deliberately broken behaviours (see `BROKEN_BEHAVIOURS`), for the contract self-test.
    """

    merchants: tuple[Merchant, ...] = field(factory=tuple, converter=_to_merchants)
    public_url: str | None = None
    db_path: str | None = None
    db_owner: bool = False
    strict_idempotency: bool = False
    unauthorized_body: str = field(default="empty", validator=validators.in_(("empty", "json")))
    empty_unauthorized_body: bool | None = None
    accepted_currencies: frozenset[str] = field(default=frozenset({"RUB", "KZT"}), converter=_to_frozenset)
    notify_statuses: frozenset[str] = field(default=frozenset({"PAID"}), converter=_to_frozenset)
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    time_scale: float = field(default=1.0, validator=validators.ge(0.0))
    expiry_lag: float = field(default=0.0, validator=validators.ge(0.0))
    sweep_interval: float = field(default=1.0, validator=validators.gt(0.0))
    notify_timeout: float = field(default=10.0, validator=validators.gt(0.0))
    faults: tuple[Fault, ...] = field(factory=tuple, converter=_to_faults)
    fault_seed: int | None = None
    broken: frozenset[str] = field(factory=frozenset, converter=_to_frozenset)

    def __attrs_post_init__(self) -> None:
        if self.empty_unauthorized_body is not None:
            warnings.warn(
                "Settings(empty_unauthorized_body=...) is deprecated; use unauthorized_body='empty' or 'json'",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "unauthorized_body", "empty" if self.empty_unauthorized_body else "json")
            object.__setattr__(self, "empty_unauthorized_body", None)
        unknown = self.broken - BROKEN_BEHAVIOURS
        if unknown:
            known = ", ".join(sorted(BROKEN_BEHAVIOURS))
            raise SettingsError(f"unknown broken behaviour(s): {', '.join(sorted(unknown))}; known: {known}")
        bad_statuses = self.notify_statuses - NOTIFIABLE_STATUSES
        if bad_statuses:
            raise SettingsError(f"notify_statuses may hold only PAID, REJECTED, EXPIRED, not {sorted(bad_statuses)}")
        if any(delay < 0 for delay in self.retry_schedule):
            raise SettingsError("retry_schedule delays must not be negative")
        for fault in self.faults:
            if fault.route not in _OPERATIONS:
                raise SettingsError(f"fault route must be * or an operationId, not {fault.route!r}")
        if not self.merchants:
            object.__setattr__(self, "merchants", (demo_merchant(),))
        for attr in ("site_id", "secret_key", "public_key"):
            values = [getattr(m, attr) for m in self.merchants]
            if len(set(values)) != len(values):
                # Never echo a secret key, not even a duplicated one.
                raise SettingsError(f"two merchants share the same {attr}")

    def merchant_by_public_key(self, public_key: str) -> Merchant | None:
        """The merchant owning `public_key` (payment form create flow), if any."""
        for merchant in self.merchants:
            if merchant.public_key == public_key:
                return merchant
        return None

    def merchant_by_site_id(self, site_id: str) -> Merchant | None:
        """The merchant with this `siteId`, if any."""
        for merchant in self.merchants:
            if merchant.site_id == site_id:
                return merchant
        return None

    def to_json(self) -> str:
        """Serialise, secrets included, to hand the settings to worker processes."""
        data: dict[str, Any] = {
            "merchants": [m.to_dict() for m in self.merchants],
            "public_url": self.public_url,
            "db_path": self.db_path,
            "db_owner": self.db_owner,
            "strict_idempotency": self.strict_idempotency,
            "unauthorized_body": self.unauthorized_body,
            "accepted_currencies": sorted(self.accepted_currencies),
            "notify_statuses": sorted(self.notify_statuses),
            "retry_schedule": list(self.retry_schedule),
            "time_scale": self.time_scale,
            "expiry_lag": self.expiry_lag,
            "sweep_interval": self.sweep_interval,
            "notify_timeout": self.notify_timeout,
            "faults": [f.to_dict() for f in self.faults],
            "fault_seed": self.fault_seed,
            "broken": sorted(self.broken),
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """Inverse of `to_json`."""
        data = json.loads(text)
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Settings:
        """Build from a plain mapping (as in `to_json`, or a TOML config's top level)."""
        data = dict(data)
        merchants = tuple(Merchant(**m) for m in data.pop("merchants", ()))
        faults = tuple(Fault(**f) for f in data.pop("faults", ()))
        if "retry_schedule" in data:
            data["retry_schedule"] = tuple(float(x) for x in data["retry_schedule"])
        return cls(merchants=merchants, faults=faults, **data)
