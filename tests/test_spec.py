"""The OpenAPI document: valid, complete, examples valid, links sound, money modelled without floats."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import pytest
from openapi_spec_validator import validate

from scripts import lint_spec

OPERATIONS = {
    ("put", "/partner/bill/v1/bills/{billId}"): "createBill",
    ("get", "/partner/bill/v1/bills/{billId}"): "getBill",
    ("post", "/partner/bill/v1/bills/{billId}/reject"): "rejectBill",
    ("put", "/partner/bill/v1/bills/{billId}/refunds/{refundId}"): "createRefund",
    ("get", "/partner/bill/v1/bills/{billId}/refunds/{refundId}"): "getRefund",
}
EXAMPLES = list(lint_spec.iter_examples())


def test_document_is_valid_openapi_3_1() -> None:
    spec = lint_spec.load_spec()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_servers_name_the_real_host_and_the_mock() -> None:
    urls = [s["url"] for s in lint_spec.load_spec()["servers"]]
    assert urls[0] == "https://api.qiwi.com"
    assert any(u.startswith("http://127.0.0.1") for u in urls)


def test_exactly_the_five_operations_with_stable_ids_tags_and_bearer_auth() -> None:
    spec = lint_spec.load_spec()
    found = {(m, p): op["operationId"] for p, m, op, _ in lint_spec.iter_operations()}
    assert found == OPERATIONS
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for _, _, op, _ in lint_spec.iter_operations():
        assert op["tags"], op["operationId"]
        assert "security" not in op, "every operation inherits the global bearer requirement"


@pytest.mark.parametrize(("method", "path"), list(OPERATIONS))
def test_every_error_status_is_documented_as_json_error_body(method: str, path: str) -> None:
    op = lint_spec.load_spec()["paths"][path][method]
    statuses = set(op["responses"])
    assert {"200", "400", "401"} <= statuses
    if op["operationId"] != "createBill":
        assert "404" in statuses, "every call on an existing bill can answer api.invoice.not.found"
    for status, response in op["responses"].items():
        if status == "401":
            # QIWI's 401 had an empty body (Java SDK live test, java-sdk#26): documented without content.
            assert "content" not in lint_spec.resolve(response)
            continue
        content = lint_spec.resolve(response)["content"]
        assert list(content) == ["application/json"], f"{status} must be JSON only"
        if status != "200":
            assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize(("where", "schema", "value"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_validates_against_its_schema(where: str, schema: dict[str, Any], value: Any) -> None:
    errors = [e.message for e in lint_spec.schema_validator(schema).iter_errors(value)]
    assert errors == [], where


def test_examples_cover_every_operation_and_the_webhook() -> None:
    labels = {where.split(" request ")[0].rsplit(" ", 2)[0] for where, _, _ in EXAMPLES}
    for method, path in OPERATIONS:
        assert any(label.startswith(f"{method.upper()} {path}") for label in labels), path
    assert any(where.startswith("webhook billPaymentNotification request") for where, _, _ in EXAMPLES)


def test_links_resolve_and_none_leave_post_reject() -> None:
    assert lint_spec.link_problems() == []
    spec = lint_spec.load_spec()
    links = {
        op["operationId"]: sorted(
            link["operationId"]
            for response in op["responses"].values()
            for link in lint_spec.resolve(response).get("links", {}).values()
        )
        for _, _, op, _ in lint_spec.iter_operations()
    }
    assert links["createBill"] == ["createRefund", "getBill", "rejectBill"]
    assert links["createRefund"] == ["getRefund"]
    # A POST with outgoing links would become schemathesis' stateful root and starve createBill.
    assert links["rejectBill"] == []
    assert "links" not in str(spec["paths"]["/partner/bill/v1/bills/{billId}/reject"])


def test_a_mistyped_link_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = copy.deepcopy(lint_spec.load_spec())
    put = broken["paths"]["/partner/bill/v1/bills/{billId}"]["put"]
    put["responses"]["200"]["links"]["GetBill"]["operationId"] = "getBillz"
    put["responses"]["200"]["links"]["RejectBill"]["parameters"] = {"bilId": "$response.body#/billId"}
    monkeypatch.setattr(lint_spec, "load_spec", lambda: broken)
    problems = lint_spec.link_problems()
    assert any("getBillz" in p for p in problems)
    assert any("'bilId'" in p for p in problems)


def test_webhook_documents_signature_header_body_and_reply() -> None:
    hook = lint_spec.load_spec()["webhooks"]["billPaymentNotification"]["post"]
    (header,) = hook["parameters"]
    assert header["name"] == "X-Api-Signature-SHA256"
    assert header["in"] == "header"
    assert header["required"] is True
    assert header["schema"]["pattern"] == "^[0-9a-f]{64}$"
    assert hook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BillNotification")
    reply = hook["responses"]["200"]["content"]["application/json"]
    assert reply["example"] == {"error": "0"}


def test_notification_models_live_in_components_so_they_are_generated() -> None:
    schemas = lint_spec.load_spec()["components"]["schemas"]
    assert {"BillNotification", "NotificationBill", "NotificationAck"} <= set(schemas)


class TestMoneyWithoutFloats:
    """Request amounts accept what real clients send; responses carry exact 2-decimal strings."""

    @staticmethod
    def _request_ok(value: Any) -> bool:
        schema = {"$ref": "#/components/schemas/AmountRequest"}
        return bool(lint_spec.schema_validator(schema).is_valid({"currency": "RUB", "value": value}))

    @pytest.mark.parametrize("value", ["10.00", "1", "0.01", "999999.99", "40.91", 40.91, 1069.85, 0.29, 100, 0.01])
    def test_valid_request_amounts(self, value: Any) -> None:
        assert self._request_ok(value)

    @pytest.mark.parametrize(
        "value",
        [
            "0",
            "0.00",
            "-1.00",
            "1.001",
            "1e3",
            "1000000.00",
            " 1.00",
            "1,00",
            "\u0660.50",
            0,
            -5,
            1000000,
            0.001,
            None,
            True,
        ],  # \u0660: Arabic-Indic zero
    )
    def test_invalid_request_amounts(self, value: Any) -> None:
        assert not self._request_ok(value)

    def test_no_multiple_of_on_any_number(self) -> None:
        # python-jsonschema #648: 40.91 is "not a multiple of 0.01" in binary floating point.
        def keys(node: Any) -> set[str]:
            if isinstance(node, dict):
                return set(node).union(*(keys(v) for v in node.values()))
            if isinstance(node, list):
                return set().union(*(keys(v) for v in node))
            return set()

        assert "multipleOf" not in keys(lint_spec.load_spec())

    @pytest.mark.parametrize(("value", "ok"), [("10.00", True), ("10", False), ("10.5", False), (10.0, False)])
    def test_response_amounts_are_two_decimal_strings(self, value: Any, ok: bool) -> None:
        validator = lint_spec.schema_validator({"$ref": "#/components/schemas/Amount"})
        assert validator.is_valid({"currency": "RUB", "value": value}) is ok


@pytest.mark.parametrize(
    ("schema", "field", "limit"),
    [
        ("CreateBillRequest", "comment", 255),
        ("NotificationBill", "comment", 255),
        ("NotificationBill", "billId", 200),
    ],
)
def test_documented_length_limits(schema: str, field: str, limit: int) -> None:
    assert lint_spec.load_spec()["components"]["schemas"][schema]["properties"][field]["maxLength"] == limit


def test_path_id_and_custom_field_limits() -> None:
    components = lint_spec.load_spec()["components"]
    assert components["parameters"]["billId"]["schema"]["maxLength"] == 200
    assert components["schemas"]["CustomFields"]["additionalProperties"]["maxLength"] == 255
    currency = lint_spec.schema_validator({"$ref": "#/components/schemas/Currency"})
    assert currency.is_valid("RUB")
    assert not currency.is_valid("rub")
    assert not currency.is_valid("RUBL")


def test_expiration_requires_an_offset() -> None:
    validator = lint_spec.schema_validator({"$ref": "#/components/schemas/CreateBillRequest"})
    body = {"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": "2030-01-01T00:00:00"}
    assert not validator.is_valid(body)
    body["expirationDateTime"] = "2030-01-01T00:00:00.123+03:00"
    assert validator.is_valid(body)


class TestNullMeansAbsentInRequests:
    """Issue 13: the Java and .NET SDKs send `null` for unset members; the document allows it where optional."""

    BODY: ClassVar[dict[str, Any]] = {
        "amount": {"currency": "RUB", "value": "1.00"},
        "expirationDateTime": "2030-01-01T00:00:00Z",
    }

    @staticmethod
    def _valid(schema: str, body: Any) -> bool:
        return bool(lint_spec.schema_validator({"$ref": f"#/components/schemas/{schema}"}).is_valid(body))

    @pytest.mark.parametrize(
        "extra",
        [
            {"comment": None},
            {"customer": None},
            {"customFields": None},
            {"customer": {"phone": None, "email": None, "account": None}},
            {"customFields": {"apiClient": "java_sdk", "apiClientVersion": "1.5.0", "checkoutReferer": None}},
            {"customFields": {"apiClient": "dotnet_sdk", "apiClientVersion": "0.1.5", "themeCode": None}},
            {"customFields": {"paySourcesFilter": None}},
        ],
    )
    def test_an_optional_member_may_be_null(self, extra: dict[str, Any]) -> None:
        assert self._valid("CreateBillRequest", {**self.BODY, **extra})

    @pytest.mark.parametrize(
        "body",
        [
            {"amount": None, "expirationDateTime": "2030-01-01T00:00:00Z"},
            {"amount": {"currency": "RUB", "value": None}, "expirationDateTime": "2030-01-01T00:00:00Z"},
            {"amount": {"currency": None, "value": "1.00"}, "expirationDateTime": "2030-01-01T00:00:00Z"},
            {"amount": {"currency": "RUB", "value": "1.00"}, "expirationDateTime": None},
        ],
    )
    def test_a_required_member_may_not_be_null(self, body: dict[str, Any]) -> None:
        assert not self._valid("CreateBillRequest", body)

    def test_refund_amount_may_not_be_null(self) -> None:
        assert not self._valid("CreateRefundRequest", {"amount": None})
        assert not self._valid("CreateRefundRequest", {"amount": {"currency": "RUB", "value": None}})

    def test_null_limits_still_apply_to_strings(self) -> None:
        assert not self._valid("CreateBillRequest", {**self.BODY, "comment": "x" * 256})
        assert not self._valid("CreateBillRequest", {**self.BODY, "customFields": {"a": "x" * 256}})

    @pytest.mark.parametrize(
        ("schema", "member"),
        [("BillCustomer", "phone"), ("BillCustomFields", "themeCode"), ("BillCustomFields", "anyKey")],
    )
    def test_responses_never_carry_null(self, schema: str, member: str) -> None:
        assert not self._valid(schema, {member: None})
        bill = lint_spec.load_spec()["components"]["schemas"]["NotificationBill"]["properties"]
        assert bill["customer"] == {"$ref": "#/components/schemas/BillCustomer"}
        assert bill["customFields"] == {"$ref": "#/components/schemas/BillCustomFields"}


def test_unauthorized_documents_the_empty_body_default_and_the_json_alternative() -> None:
    response = lint_spec.load_spec()["components"]["responses"]["Unauthorized"]
    assert "content" not in response  # a documented JSON body would make the generated client parse b""
    description = response["description"]
    assert "empty body" in description
    assert '"errorCode":"auth.unauthorized"' in description
    # The reference document's sample spells it `datetime`; every other source, and the mock, `dateTime`.
    assert '"dateTime":' in description
    assert '"datetime"' not in description
