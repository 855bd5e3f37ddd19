"""QIWI's rules (`rules.py`) without HTTP or SQL, and the fidelity rules of issue 13 end to end."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings as hypothesis_settings, strategies as st
from mock_helpers import AUTH, OTHER_AUTH, FakeClock, bill_body, make_settings, sequential_ids

from qiwi_bill_mock import context, create_app, rules
from qiwi_bill_mock.errors import IncorrectRefundAmount, InvalidValues, WrongBillStatus
from qiwi_bill_mock.models import Bill, BillDraft, to_micros
from qiwi_bill_mock.validation import SpecValidators, draft_from_body, find_spec, refund_amount_from_body

BILLS = "/partner/bill/v1/bills"


def bill(status: str = "WAITING", amount: str = "10.00", refunded: str = "0.00") -> Bill:
    return Bill(
        site_id="s",
        bill_id="b",
        invoice_uid="u",
        amount=Decimal(amount),
        currency="RUB",
        status=status,
        created_us=0,
        changed_us=0,
        expires_us=10,
        expiration_text="",
        comment=None,
        customer={},
        custom_fields={},
        pay_source=None,
        refunded=Decimal(refunded),
    )


# -- the rules, one by one ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ok"),
    [("0.01", True), ("999999.99", True), ("0", False), ("0.001", False), ("1000000", False), ("-1", False)],
)
def test_amount_range_and_decimals(amount: str, ok: bool) -> None:
    assert (rules.amount_problem(Decimal(amount)) is None) is ok


def test_the_amount_limit_is_qiwi_bills() -> None:
    import qiwi_bill

    assert rules.MAX_AMOUNT is qiwi_bill.MAX_AMOUNT == Decimal("999999.99")
    assert rules.PAY_SOURCES is qiwi_bill.PAY_SOURCES


def test_json_numbers_round_down() -> None:
    assert rules.round_json_amount(Decimal("10.999")) == Decimal("10.99")
    assert rules.round_json_amount(5) == Decimal("5.00")


def test_expiration_must_be_in_the_future_and_renderable() -> None:
    now = to_micros(datetime(2030, 1, 1, tzinfo=UTC))
    assert rules.expiration_problem(now, now) == "must be in the future"
    assert rules.expiration_problem(now + 1, now) is None
    latest = to_micros(rules.LATEST_EXPIRATION)
    assert rules.expiration_problem(latest, now) is None
    assert rules.LATEST_EXPIRATION.astimezone(rules.MOSCOW_TZ).year == 9999  # still shown in Moscow time
    assert "9999-12-31T23:59:59.999+03:00" in (rules.expiration_problem(latest + 1, now) or "")


def test_transitions() -> None:
    assert rules.transition(bill("WAITING"), "PAID", "pay") is True
    assert rules.transition(bill("PAID"), "PAID", "pay") is False  # a repeat
    with pytest.raises(WrongBillStatus, match="a PAID bill cannot be rejected"):
        rules.transition(bill("PAID"), "REJECTED", "reject")
    with pytest.raises(WrongBillStatus, match="cannot pay a EXPIRED bill"):
        rules.transition(bill("EXPIRED"), "PAID", "pay")


def test_refund_arithmetic() -> None:
    assert rules.refund_outcome(bill("PAID"), Decimal("4.00"), "RUB") == (Decimal("4.00"), "PARTIAL")
    assert rules.refund_outcome(bill("PAID", refunded="4.00"), Decimal("6.00"), "RUB") == (Decimal("10.00"), "FULL")
    with pytest.raises(IncorrectRefundAmount, match="exceeds"):
        rules.refund_outcome(bill("PAID", refunded="4.00"), Decimal("6.01"), "RUB")
    with pytest.raises(IncorrectRefundAmount, match="currency"):
        rules.refund_outcome(bill("PAID"), Decimal("1.00"), "KZT")
    with pytest.raises(IncorrectRefundAmount, match="positive"):
        rules.refund_outcome(bill("PAID"), Decimal("0"), "RUB")
    with pytest.raises(WrongBillStatus):
        rules.refund_outcome(bill("WAITING"), Decimal("1.00"), "RUB")


def test_pay_sources() -> None:
    assert rules.check_pay_source(None) is None
    assert rules.check_pay_source("card") == "card"
    with pytest.raises(InvalidValues, match="paySource"):
        rules.check_pay_source("bitcoin")


def test_a_draft_collects_every_problem() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    draft = BillDraft(
        amount=Decimal("0"),
        currency="USD",
        expiration=now,
        expiration_text="",
        comment="x" * 256,
        custom_fields={"k": "v" * 256},
    )
    with pytest.raises(InvalidValues) as info:
        rules.check_draft(draft, now_us=to_micros(now), currencies=rules.DEFAULT_CURRENCIES)
    assert set(info.value.cause) == {
        "amount.value",
        "amount.currency",
        "expirationDateTime",
        "comment",
        "customFields.k",
    }


async def test_the_mocks_own_bounds_on_custom_fields_and_email(client: httpx.AsyncClient) -> None:
    """Issue 16: names of at most 255 characters, at most 64 fields, an e-mail of at most 254: each is a 400
    validation.error with its cause, and exactly the limit is accepted."""
    at_limit = {
        **bill_body(),
        "customer": {"email": "e" * (rules.EMAIL_MAX - 6) + "@a.org"},
        "customFields": {("n" * (rules.FIELD_NAME_MAX - 2)) + f"{n:02d}": "v" for n in range(rules.FIELDS_MAX)},
    }
    assert (await client.put(f"{BILLS}/bounds-ok", json=at_limit, headers=AUTH)).status_code == 200
    over = [
        ({"customFields": {"n" * (rules.FIELD_NAME_MAX + 1): "v"}}, "customFields", "field names must be at most 255"),
        ({"customFields": {f"k{n}": "v" for n in range(rules.FIELDS_MAX + 1)}}, "customFields", "at most 64 fields"),
        ({"customer": {"email": "e" * rules.EMAIL_MAX + "@a.org"}}, "customer.email", "between 0 and 254"),
    ]
    for n, (extra, field, message) in enumerate(over):
        refused = await client.put(f"{BILLS}/bounds-{n}", json={**bill_body(), **extra}, headers=AUTH)
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["errorCode"] == "validation.error"
        assert any(message in text for text in body["cause"][field]), body["cause"]
        assert (await client.get(f"{BILLS}/bounds-{n}", headers=AUTH)).status_code == 404  # nothing stored


# -- JSON null = absent (issue 13) -----------------------------------------------------------------


def _nullable(schema: dict[str, Any]) -> None:
    required = set(schema.get("required", ()))
    for name, prop in list(schema.get("properties", {}).items()):
        if name not in required:
            schema["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        schema["additionalProperties"] = {"anyOf": [extra, {"type": "null"}]}


@pytest.fixture(scope="module")
def null_spec() -> dict[str, Any]:
    """The document with every optional create member nullable (what the "compat" change of issue 13 does)."""
    spec = yaml.safe_load(find_spec().read_text(encoding="utf-8"))
    patched = copy.deepcopy(spec)
    for name in ("CreateBillRequest", "Customer", "CustomFields"):
        _nullable(patched["components"]["schemas"][name])
    return patched


@pytest.fixture(scope="module")
def null_validators(null_spec: dict[str, Any]) -> SpecValidators:
    return SpecValidators(null_spec)


def test_nulls_follow_the_document() -> None:
    plain = SpecValidators(yaml.safe_load(find_spec().read_text(encoding="utf-8")))
    body = {**bill_body(), "comment": None}
    if plain.null_is_absent:  # the document already allows nulls: nothing to compare with
        assert draft_from_body(plain, body).comment is None
    else:
        with pytest.raises(Exception):  # noqa: B017, PT011 - unreadable or invalid, as the document says
            draft_from_body(plain, body)


_OPTIONAL = st.fixed_dictionaries(
    {},
    optional={
        "comment": st.text(max_size=20),
        "customer": st.fixed_dictionaries(
            {}, optional={"phone": st.just("79123456789"), "email": st.just("a@b.c"), "account": st.text(max_size=5)}
        ),
        "customFields": st.dictionaries(
            st.sampled_from(["themeCode", "paySourcesFilter", "apiClient", "checkoutReferer"]), st.text(max_size=10)
        ),
    },
)


def _null_paths(body: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [(name,) for name in ("comment", "customer", "customFields")]
    for group in ("customer", "customFields"):
        for key in body.get(group, {}):
            paths.append((group, key))
    return paths


@hypothesis_settings(max_examples=60, deadline=None)
@given(optional=_OPTIONAL, data=st.data())
def test_a_null_optional_member_is_the_member_left_out(
    null_validators: SpecValidators, optional: dict[str, Any], data: st.DataObject
) -> None:
    body = {**bill_body(), **optional}
    path = data.draw(st.sampled_from(_null_paths(body)))
    with_null = copy.deepcopy(body)
    without = copy.deepcopy(body)
    target_null, target_without = with_null, without
    for part in path[:-1]:
        target_null = target_null.setdefault(part, {})
        target_without = target_without.get(part, {})
    target_null[path[-1]] = None
    target_without.pop(path[-1], None)
    assert draft_from_body(null_validators, with_null) == draft_from_body(null_validators, without)


@pytest.mark.parametrize("path", [("amount",), ("amount", "value"), ("amount", "currency"), ("expirationDateTime",)])
def test_a_null_required_member_is_refused_like_a_missing_one(
    null_validators: SpecValidators, path: tuple[str, ...]
) -> None:
    nulled, missing = bill_body(), bill_body()
    if len(path) == 1:
        nulled[path[0]] = None
        del missing[path[0]]
    else:
        nulled[path[0]][path[1]] = None
        del missing[path[0]][path[1]]
    with pytest.raises(InvalidValues) as as_null:
        draft_from_body(null_validators, nulled)
    with pytest.raises(InvalidValues) as as_missing:
        draft_from_body(null_validators, missing)
    assert as_null.value.cause == as_missing.value.cause
    assert ".".join(path) in as_null.value.cause


def test_a_null_refund_value_is_refused_like_a_missing_one(null_validators: SpecValidators) -> None:
    with pytest.raises(InvalidValues) as info:
        refund_amount_from_body(null_validators, {"amount": {"value": None, "currency": "RUB"}})
    assert "amount.value" in info.value.cause


async def test_the_java_sdks_create_body_is_accepted(
    null_validators: SpecValidators, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setattr(context, "load_validators", lambda: null_validators)
    app = create_app(make_settings(), clock=clock, id_factory=sequential_ids())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as client:
        # QIWI's Java SDK 1.5.0: Jackson writes unset fields as null (qiwi-sdks.md).
        body = {**bill_body(), "comment": None, "customer": None, "customFields": {"checkoutReferer": None}}
        response = await client.put(f"{BILLS}/java", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        assert "customFields" not in response.json()
        refused = await client.put(f"{BILLS}/j2", json={**bill_body(), "amount": None}, headers=AUTH)
        assert refused.status_code == 400
        assert refused.json()["errorCode"] == "validation.error"
        assert "amount" in refused.json()["cause"]


# -- year 9999 (issue 13) ----------------------------------------------------------------------------


@pytest.mark.parametrize("expiry", ["9999-12-31T23:59:59+00:00", "9999-12-31T21:00:00Z", "9999-12-31T20:00:00-05:00"])
async def test_an_expiry_the_page_cannot_show_is_refused_on_create(client: httpx.AsyncClient, expiry: str) -> None:
    response = await client.put(f"{BILLS}/far", json={**bill_body(), "expirationDateTime": expiry}, headers=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == "validation.error"
    assert "expirationDateTime" in body["cause"]


async def test_the_latest_accepted_expiry_renders_and_pays(client: httpx.AsyncClient) -> None:
    body = {**bill_body(), "expirationDateTime": "9999-12-31T23:59:59+03:00"}
    created = await client.put(f"{BILLS}/latest", json=body, headers=AUTH)
    assert created.status_code == 200
    uid = created.json()["payUrl"].split("invoice_uid=")[1]
    page = await client.get(f"/form/?invoice_uid={uid}")
    assert page.status_code == 200
    assert "9999" in page.text
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
    assert token is not None  # Pay needs the page's token (issue 16 item 3)
    paid = await client.post(f"/form/pay?invoice_uid={uid}", data={"paySource": "card", "token": token[1]})
    assert paid.status_code == 303


# -- per-merchant clocks (issue 16 item 4) -----------------------------------------------------------


async def test_one_merchants_clock_does_not_move_anothers(client: httpx.AsyncClient, clock: FakeClock) -> None:
    tomorrow = (clock() + timedelta(days=1)).isoformat()
    for headers in (AUTH, OTHER_AUTH):
        body = {**bill_body(), "expirationDateTime": tomorrow}
        assert (await client.put(f"{BILLS}/b", json=body, headers=headers)).status_code == 200
    moved = await client.post("/_mock/clock/advance", json={"seconds": 2 * 86400}, headers=OTHER_AUTH)
    assert moved.status_code == 200
    assert (await client.get(f"{BILLS}/b", headers=OTHER_AUTH)).json()["status"]["value"] == "EXPIRED"
    a = await client.get(f"{BILLS}/b", headers=AUTH)
    assert a.json()["status"]["value"] == "WAITING"
    # A's "in the future" still reads A's clock: a bill for tomorrow is fine for A, refused for B.
    later = {**bill_body(), "expirationDateTime": tomorrow}
    assert (await client.put(f"{BILLS}/a2", json=later, headers=AUTH)).status_code == 200
    assert (await client.put(f"{BILLS}/b2", json=later, headers=OTHER_AUTH)).status_code == 400
    # B's reset puts B's clock back and forgets B's bills; A keeps its bills and its clock.
    await client.post("/_mock/clock/advance", json={"seconds": 60}, headers=AUTH)
    assert (await client.post("/_mock/reset", headers=OTHER_AUTH)).status_code == 200
    app = client._transport.app  # type: ignore[attr-defined]
    service = app.state.ctx.service
    assert service.now("9hh4jb-00") == clock()
    assert service.now("270305") == clock() + timedelta(seconds=60)
    assert (await client.get(f"{BILLS}/b", headers=AUTH)).status_code == 200


# -- payUrl, headers, the access log, middleware ------------------------------------------------------


async def test_pay_url_follows_the_request_host_unless_public_url_is_set(clock: FakeClock) -> None:
    settings = make_settings()
    derived = type(settings)(merchants=settings.merchants)  # no public_url
    for app_settings, host, expected in (
        (derived, "mock.example:4567", "http://mock.example:4567/form/?invoice_uid="),
        (settings, "mock.example:4567", "http://mock.test/form/?invoice_uid="),
    ):
        app = create_app(app_settings, clock=clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as client:
            response = await client.put(f"{BILLS}/p", json=bill_body(), headers=AUTH)
            assert response.json()["payUrl"].startswith(expected)
            again = await client.get(f"{BILLS}/p", headers=AUTH)
            assert again.json()["payUrl"] == response.json()["payUrl"]


async def test_api_answers_are_not_cacheable(client: httpx.AsyncClient) -> None:
    ok = await client.put(f"{BILLS}/c", json=bill_body(), headers=AUTH)
    missing = await client.get(f"{BILLS}/nope", headers=AUTH)
    for response in (ok, missing, await client.get(f"{BILLS}/c", headers=AUTH)):
        assert response.headers["Cache-Control"] == "no-store"


async def test_the_access_log_line_of_an_error_ends_with_its_error_code(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="qiwi_bill_mock.access"):
        await client.get(f"{BILLS}/nope", headers=AUTH)
        await client.put(f"{BILLS}/ok", json=bill_body(), headers=AUTH)
    lines = [r.getMessage() for r in caplog.records if r.name == "qiwi_bill_mock.access"]
    assert lines[0].endswith(" 404 " + lines[0].split(" 404 ")[1].split(" ")[0] + " api.invoice.not.found")
    assert lines[1].endswith("ms")  # a 200 line carries no code


async def test_a_wrapping_middleware_sees_every_request(clock: FakeClock) -> None:
    seen: list[str] = []

    class Spy:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.app(scope, receive, send)

    wrapped = create_app(make_settings(), clock=clock)
    legacy = create_app(make_settings(), clock=clock)
    with pytest.warns(DeprecationWarning, match="wrap"):
        legacy.add_middleware(Spy)
    for app in (Spy(wrapped), legacy):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock.test") as client:
            await client.put(f"{BILLS}/m", json=bill_body(), headers=AUTH)
            await client.get(f"{BILLS}/m", headers=AUTH)
            await client.get("/form/?invoice_uid=x")
    assert seen == [f"{BILLS}/m", f"{BILLS}/m", "/form/"] * 2


async def test_request_listeners_get_merchant_operation_status_and_error_code(
    app: Any, client: httpx.AsyncClient
) -> None:
    records: list[Any] = []
    app.state.ctx.add_request_listener(records.append)
    await client.put(f"{BILLS}/l", json=bill_body(), headers=AUTH)
    await client.get(f"{BILLS}/none", headers=AUTH)
    await client.get(f"{BILLS}/l")
    summary = [(r.operation, r.site_id, r.status, r.error_code) for r in records]
    assert summary == [
        ("createBill", "270305", 200, None),
        ("getBill", "270305", 404, "api.invoice.not.found"),
        ("getBill", None, 401, "auth.unauthorized"),
    ]


async def test_the_plain_asgi_app_runs_its_lifespan(clock: FakeClock) -> None:
    from asgi_lifespan import LifespanManager

    app = create_app(make_settings(), clock=clock)
    notifier = app.state.ctx.notifier
    async with LifespanManager(app):
        assert notifier._task is not None  # the notifier (and the sweeper) run while the app lives
    assert notifier._task is None
