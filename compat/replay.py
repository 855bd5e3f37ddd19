"""What QIWI's Java, .NET and PHP SDKs put on the wire, and how each reads the answer, rebuilt from their source.

No JVM, .NET or PHP runs here: each `Sdk` holds the exact headers and body bytes that SDK sends (with the
JSON spelling its serialiser produces: Jackson's nulls and field order, DataContractJsonSerializer's
alphabetical members and `.fff` dates, PHP's `\\/` and raw UTF-8), and a `read` function that applies the
SDK's response rules to the mock's answer. Source for every rule: ../shared/reference/qiwi-sdks.md,
sections 1.3-1.4 (classes, exceptions), 2 (signature), 4.1 (headers), 4.2 (bodies), 4.3 (error handling),
5 (test vectors); Java and PHP were run there, .NET was read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx

__all__ = ["DOTNET", "JAVA", "PHP", "SDKS", "Outcome", "Sdk"]


@dataclass(frozen=True)
class Outcome:
    """What the SDK's caller gets: a parsed value, or the exception type the SDK raises (and its message)."""

    kind: str  # "ok", or the exception class name
    value: Any = None
    message: str = ""


@dataclass(frozen=True)
class Sdk:
    """One SDK: its name, how it builds requests, and how it reads answers."""

    name: str
    key: str
    #: Headers on every request (besides `Authorization`), added with a JSON body, and added without one.
    base_headers: Mapping[str, str]
    body_headers: Mapping[str, str]
    bodyless_headers: Mapping[str, str]
    #: The create body for (amount value, expiration): exact bytes.
    create_body: Callable[[str, str], bytes]
    #: A create body with the nulls this SDK sends for unset members.
    create_body_with_nulls: Callable[[str, str], bytes]
    #: A create body this SDK sends that the service refuses with 400.
    invalid_create_body: Callable[[str], bytes]
    refund_body: Callable[[str], bytes]
    #: The bodies of GET and reject (None: no body at all) and whether reject carries a JSON Content-Type.
    get_body: bytes | None
    reject_body: bytes | None
    reject_json: bool
    expiration: str
    #: read(response, model) -> Outcome; model is "bill" or "refund".
    read: Callable[[httpx.Response, str], Outcome]
    #: verify(signature header, notification body, secret) -> bool, with the SDK's formatting and comparison.
    verify: Callable[[str, Mapping[str, Any], str], bool]

    def headers(self, key: str, json_body: bool) -> dict[str, str]:
        """The headers this SDK sends with secret `key`, with or without a JSON body."""
        extra = self.body_headers if json_body else self.bodyless_headers
        return {"Authorization": f"Bearer {key}", **self.base_headers, **extra}


def _hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def _signed_fields(body: Mapping[str, Any], value: str) -> str:
    bill = body["bill"]
    return "|".join([bill["amount"]["currency"], value, bill["billId"], bill["siteId"], bill["status"]["value"]])


def _two_decimals(value: Any, rounding: str) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=rounding))


def _verifier(rounding: str) -> Callable[[str, Mapping[str, Any], str], bool]:
    """An SDK's signature check: amount to 2 decimals with `rounding`, lowercase hex, plain `==` (qiwi-sdks.md 2)."""

    def verify(signature: str, body: Mapping[str, Any], secret: str) -> bool:
        value = _two_decimals(body["bill"]["amount"]["value"], rounding)
        return _hmac_hex(secret, _signed_fields(body, value)) == signature

    return verify


# -- Java SDK 1.5.0 (com.qiwi:bill-payments-java-sdk) -------------------------------------------

# Jackson with FAIL_ON_UNKNOWN_PROPERTIES (the default of a plain ObjectMapper): every member the answer may
# carry, per model. A member outside these makes the SDK fail to map the body (qiwi-sdks.md 4.3).
_J_MONEY = {"value": str, "currency": str}
_J_BILL = {
    "siteId": str,
    "billId": str,
    "amount": _J_MONEY,
    "status": {"value": ("WAITING", "PAID", "REJECTED", "EXPIRED"), "changedDateTime": str},
    "customer": {"email": str, "account": str, "phone": str},
    # The Java CustomFields model: the fingerprint and the referer (sent as `checkoutReferer`; the service's
    # key is `CHECKOUT_REFERER`, qiwi-sdks.md "Custom field keys seen in the wild").
    "customFields": {"apiClient": str, "apiClientVersion": str, "checkoutReferer": str, "CHECKOUT_REFERER": str},
    "comment": str,
    "creationDateTime": str,
    "expirationDateTime": str,
    "payUrl": str,
}
_J_REFUND = {"amount": _J_MONEY, "dateTime": str, "refundId": str, "status": ("PARTIAL", "FULL")}
_J_ERROR = {k: str for k in ("serviceName", "errorCode", "description", "userMessage", "dateTime", "traceId")}
_JAVA_MODELS = {"bill": _J_BILL, "refund": _J_REFUND}


def _jackson_maps(value: Any, model: Any) -> bool:
    """Whether Jackson binds `value` to `model` (unknown members fail; null binds to anything)."""
    if value is None:
        return True
    if model is str:
        return isinstance(value, str)
    if isinstance(model, tuple):
        return value in model
    if not isinstance(value, dict):
        return False
    return all(key in model and _jackson_maps(item, model[key]) for key, item in value.items())


def _java_read(response: httpx.Response, model: str) -> Outcome:
    # ApacheWebClient reads one line (BufferedReader.readLine): a multi-line body is cut after its first line.
    line = response.content.decode("utf-8").splitlines()[0] if response.content else ""
    if not line:
        return Outcome("BadResponseException", message=f"empty body, HTTP status {response.status_code}")
    try:
        data = json.loads(line)
    except ValueError:
        return Outcome("BadResponseException", message="ResponseData{...}")
    # The success type first, whatever the status; then ErrorResponse; else BadResponseException.
    if isinstance(data, dict) and _jackson_maps(data, _JAVA_MODELS[model]):
        return Outcome("ok", data)
    if isinstance(data, dict) and set(data) <= set(_J_ERROR) and _jackson_maps(data, _J_ERROR):
        return Outcome("BillPaymentServiceException", data, message=str(data.get("errorCode")))
    return Outcome("BadResponseException", data, message="ResponseData{...}")


_JAVA_FINGERPRINT = '{"apiClient":"java_sdk","apiClientVersion":"1.5.0","checkoutReferer":null}'
JAVA = Sdk(
    name="Java SDK 1.5.0 (requests replayed)",
    key="java",
    # The same headers on every method, GET included; note the space before `charset` (qiwi-sdks.md 4.1).
    base_headers={
        "Accept": "application/json; charset=UTF-8",
        "Content-Type": "application/json; charset=UTF-8",
        "Accept-Encoding": "gzip,deflate",
        "User-Agent": "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    },
    body_headers={},
    bodyless_headers={},
    # Field order of the Java classes; ISO_OFFSET_DATE_TIME (fraction only when non-zero); nulls included.
    create_body=lambda value, expiry: (
        f'{{"amount":{{"value":"{value}","currency":"RUB"}},"comment":"test","expirationDateTime":"{expiry}",'
        '"customer":{"email":"buyer@example.com","account":"buyer-1","phone":"79123456789"},'
        f'"customFields":{_JAVA_FINGERPRINT}}}'
    ).encode(),
    # testCreateAndCancelBill: customer = null, no comment.
    create_body_with_nulls=lambda value, expiry: (
        f'{{"amount":{{"value":"{value}","currency":"RUB"}},"comment":null,"expirationDateTime":"{expiry}",'
        f'"customer":null,"customFields":{_JAVA_FINGERPRINT}}}'
    ).encode(),
    # BillPaymentsSdkNegativeScenariosTest: create with a null amount → HTTP 400 and BadResponseException.
    invalid_create_body=lambda expiry: (
        f'{{"amount":null,"comment":null,"expirationDateTime":"{expiry}","customer":null,'
        f'"customFields":{_JAVA_FINGERPRINT}}}'
    ).encode(),
    refund_body=lambda value: f'{{"amount":{{"value":"{value}","currency":"RUB"}}}}'.encode(),
    # WebClient.request(method, url, Optional.empty(), headers) for GET and cancel.
    get_body=None,
    reject_body=None,
    reject_json=False,
    expiration="2030-12-31T23:59:59.123+03:00",
    read=_java_read,
    verify=_verifier(ROUND_HALF_DOWN),  # BigDecimal.setScale(2, ROUND_HALF_DOWN); String.equals
)


# -- .NET SDK 0.1.5 (NuGet Qiwi.BillPayments) ---------------------------------------------------

# DateTimeFormat = "yyyy-MM-ddTHH:mm:ss.fffzzz": DataContractJsonSerializer with that format reads dates
# strictly, so any other precision or offset spelling in a success answer throws (qiwi-sdks.md 1.4, 4.3).
_DOTNET_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
_DOTNET_DATES = {
    "bill": (("creationDateTime",), ("expirationDateTime",), ("status", "changedDateTime")),
    "refund": (("dateTime",),),
    "error": (("dateTime",),),
}


def _dotnet_read(response: httpx.Response, model: str) -> Outcome:
    if not response.content:
        return Outcome("BadResponseException", message=f"Empty body, HTTP status {response.status_code}")
    data = json.loads(response.content)
    # The success type is read first and unknown members are ignored, so an error body reads as an empty
    # success object: the SDK's callers must check it; here the caller asks for "error" on error answers.
    for path in _DOTNET_DATES[model]:
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not _DOTNET_DATE.fullmatch(node):
            return Outcome("BillPaymentsServiceException", data, message=f"unparsable date {node!r}")
    return Outcome("ok", data)


DOTNET = Sdk(
    name=".NET SDK 0.1.5 (requests replayed)",
    key="dotnet",
    base_headers={"Accept": "application/json"},
    # StringContent's own Content-Type, only with content (reject sends "", so it has one too).
    body_headers={"Content-Type": "application/json; charset=utf-8"},
    bodyless_headers={},
    # DataContractJsonSerializer: members in alphabetical order, nulls emitted, dates with .fff.
    create_body=lambda value, expiry: (
        f'{{"amount":{{"currency":"RUB","value":"{value}"}},"comment":"test",'
        '"customFields":{"apiClient":"dotnet_sdk","apiClientVersion":"0.1.5","themeCode":null},'
        '"customer":{"account":"buyer-1","email":"buyer@example.com","phone":"79123456789"},'
        f'"expirationDateTime":"{expiry}"}}'
    ).encode(),
    create_body_with_nulls=lambda value, expiry: (
        f'{{"amount":{{"currency":"RUB","value":"{value}"}},"comment":null,'
        '"customFields":{"apiClient":"dotnet_sdk","apiClientVersion":"0.1.5","themeCode":null},'
        f'"customer":{{"account":null,"email":"buyer@example.com","phone":null}},"expirationDateTime":"{expiry}"}}'
    ).encode(),
    invalid_create_body=lambda expiry: (
        '{"amount":{"currency":"RUB","value":"0.00"},"comment":null,'
        '"customFields":{"apiClient":"dotnet_sdk","apiClientVersion":"0.1.5","themeCode":null},'
        f'"customer":null,"expirationDateTime":"{expiry}"}}'
    ).encode(),
    refund_body=lambda value: f'{{"amount":{{"currency":"RUB","value":"{value}"}}}}'.encode(),
    # GET without content; reject with StringContent("") (the fake-client tests assert body "").
    get_body=None,
    reject_body=b"",
    reject_json=True,
    expiration="2030-12-31T23:59:59.000+03:00",
    read=_dotnet_read,
    verify=_verifier(ROUND_HALF_EVEN),  # decimal.Round(v, 2, ToEven); X2 hex lowered; ordinal ==
)


# -- PHP SDK 0.2.2 (composer qiwi/bill-payments-php-sdk) ------------------------------------------


def _php_read(response: httpx.Response, _model: str) -> Outcome:
    # The HTTP status is not checked. An empty body returns `true` (also what a body-less 401 gives,
    # qiwi-sdks.md 4.3, php-sdk issue #25); a body with errorCode throws BillPaymentsException
    # (message = description, code = HTTP status); non-JSON throws with json_last_error_msg().
    if not response.content:
        return Outcome("ok", True)
    try:
        data = json.loads(response.content)
    except ValueError:
        return Outcome("BillPaymentsException", message="Syntax error")
    if isinstance(data, dict) and "errorCode" in data:
        return Outcome("BillPaymentsException", response.status_code, message=data.get("description") or "")
    return Outcome("ok", data)


PHP = Sdk(
    name="PHP SDK 0.2.2 (requests replayed)",
    key="php",
    base_headers={"User-Agent": "php_sdk-0.2.2", "Accept": "application/json"},
    # With a body the SDK sets this Content-Type; without one (GET, reject) curl sends its form default and
    # `Content-Length: 0`.
    body_headers={"Content-Type": "application/json;charset=UTF-8"},
    bodyless_headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "0"},
    # json_encode: `/` escaped as `\/`, Unicode unescaped; empty values removed by array_filter (no customer).
    create_body=lambda value, expiry: (
        f'{{"amount":{{"currency":"RUB","value":"{value}"}},"comment":"a\\/b Привет","expirationDateTime":"{expiry}",'
        '"customFields":{"apiClient":"php_sdk","apiClientVersion":"0.2.2","city":"Москва"}}'
    ).encode(),
    # PHP drops empty values rather than sending null: its "nulls" case is the SDK's minimal body.
    create_body_with_nulls=lambda value, expiry: (
        f'{{"amount":{{"currency":"RUB","value":"{value}"}},"expirationDateTime":"{expiry}",'
        '"customFields":{"apiClient":"php_sdk","apiClientVersion":"0.2.2"}}'
    ).encode(),
    # normalizeAmount(0) is "0.00".
    invalid_create_body=lambda expiry: (
        f'{{"amount":{{"currency":"RUB","value":"0.00"}},"expirationDateTime":"{expiry}",'
        '"customFields":{"apiClient":"php_sdk","apiClientVersion":"0.2.2"}}'
    ).encode(),
    refund_body=lambda value: f'{{"amount":{{"currency":"RUB","value":"{value}"}}}}'.encode(),
    get_body=b"",
    reject_body=b"",
    reject_json=False,
    expiration="2030-12-31T23:59:59+03:00",
    read=_php_read,
    verify=_verifier(ROUND_HALF_DOWN),  # round(floatval(v), 2, PHP_ROUND_HALF_DOWN); ===
)

SDKS = (JAVA, DOTNET, PHP)
