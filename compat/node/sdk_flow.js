'use strict';
/*
 * QIWI's official Node SDK (@qiwi/bill-payments-node-js-sdk, pinned in package.json) run unmodified
 * against qiwi-bill-mock. compat/test_node_sdk.py starts the mock and this script, then asserts on
 * the JSON report printed on stdout: one entry per step (what the SDK returned or threw) and every
 * request the SDK put on the wire (method, URL, headers, body).
 *
 * The SDK hard-codes https://api.qiwi.com inside _requestBuilder and has no base-URL option
 * (../shared/reference/qiwi-sdks.md section 6). The smallest non-invasive redirection is that
 * note's option 2: replace the require.cache entry of the SDK's own request-promise with a wrapper
 * that rewrites the URL prefix, before the SDK is loaded. The SDK's headers, body and error
 * handling stay exactly its own; no file in node_modules is edited.
 *
 * Environment: QIWI_MOCK_URL (http://127.0.0.1:PORT), QIWI_SECRET_KEY (the mock merchant's key),
 * QIWI_NOTIFY_PORT (where this script listens for the mock's notification).
 */

const http = require('http');
const path = require('path');

const REAL_HOST = 'https://api.qiwi.com';
const MOCK_URL = process.env.QIWI_MOCK_URL;
const SECRET_KEY = process.env.QIWI_SECRET_KEY;
const NOTIFY_PORT = Number(process.env.QIWI_NOTIFY_PORT);
if (!MOCK_URL || !SECRET_KEY || !NOTIFY_PORT) {
    throw new Error('set QIWI_MOCK_URL, QIWI_SECRET_KEY and QIWI_NOTIFY_PORT');
}

// -- redirection: the SDK's own request-promise, wrapped before the SDK captures it ------------
const sdkDir = path.dirname(require.resolve('@qiwi/bill-payments-node-js-sdk/package.json'));
const requestPromisePath = require.resolve('request-promise', { paths: [sdkDir] });
const requestPromise = require(requestPromisePath);
const wire = [];
function redirected (options) {
    if (!String(options.uri).startsWith(REAL_HOST)) {
        // Never let a request leave for anything but the mock.
        throw new Error(`unexpected SDK URL ${options.uri}`);
    }
    const uri = MOCK_URL + String(options.uri).slice(REAL_HOST.length);
    wire.push({ method: options.method, uri, headers: options.headers, json: options.json, body: options.body });
    return requestPromise({ ...options, uri });
}
Object.assign(redirected, requestPromise);
require.cache[requestPromisePath].exports = redirected;

const QiwiBillPaymentsAPI = require('@qiwi/bill-payments-node-js-sdk');
const sdkVersion = require('@qiwi/bill-payments-node-js-sdk/package.json').version;

// -- helpers ------------------------------------------------------------------------------------
const steps = [];

/** Run one SDK call; record its result, or the error the SDK's caller would catch. */
async function step (name, call) {
    try {
        const result = await call();
        steps.push({ name, ok: true, result: result === undefined ? null : result });
        return result;
    } catch (err) {
        steps.push({
            name,
            ok: false,
            error: {
                name: err && err.name,
                message: String(err && err.message).slice(0, 500),
                statusCode: err && err.statusCode,
                body: err && err.error !== undefined ? err.error : null,
                bodyIsUndefined: !!err && err.error === undefined
            }
        });
        return undefined;
    }
}

/** A plain HTTP call to the mock's /_mock/ controls (not part of QIWI's API, so not through the SDK). */
function control (method, urlPath, body) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? '' : JSON.stringify(body);
        const req = http.request(MOCK_URL + urlPath, {
            method,
            headers: { Authorization: `Bearer ${SECRET_KEY}`, 'Content-Type': 'application/json' }
        }, (res) => {
            let text = '';
            res.on('data', (chunk) => { text += chunk; });
            res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
        });
        req.on('error', reject);
        req.end(data);
    });
}

/** The merchant's notification endpoint: answers {"error":"0"} and resolves with the first POST. */
function notificationReceiver () {
    let resolveFirst;
    const first = new Promise((resolve) => { resolveFirst = resolve; });
    const server = http.createServer((req, res) => {
        let text = '';
        req.on('data', (chunk) => { text += chunk; });
        req.on('end', () => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end('{"error":"0"}');
            resolveFirst({ headers: req.headers, body: text });
        });
    });
    return new Promise((resolve) => server.listen(NOTIFY_PORT, '127.0.0.1', () => resolve({ server, first })));
}

function timeout (ms, what) {
    return new Promise((resolve, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms));
}

// -- the flow -----------------------------------------------------------------------------------
async function main () {
    const { server, first } = await notificationReceiver();
    const qiwi = new QiwiBillPaymentsAPI(SECRET_KEY);
    const suffix = `${process.pid}-${Date.now()}`;
    const billId = `node-sdk-${suffix}`;
    const params = () => ({
        amount: 10,
        currency: 'RUB',
        comment: 'compat: Node SDK',
        // The SDK's own helper: local time zone offset, no milliseconds.
        expirationDateTime: qiwi.getLifetimeByDay(1),
        email: 'buyer@example.com',
        account: 'buyer-1',
        successUrl: 'https://merchant.example/thanks'
    });

    await step('create', () => qiwi.createBill(billId, params()));
    await step('create_repeated', () => qiwi.createBill(billId, params()));
    await step('get', () => qiwi.getBillInfo(billId));

    const rejectId = `node-sdk-reject-${suffix}`;
    await step('create_to_reject', () => qiwi.createBill(rejectId, params()));
    await step('reject', () => qiwi.cancelBill(rejectId));

    const paid = await control('POST', `/_mock/bills/${encodeURIComponent(billId)}/pay`);
    steps.push({ name: 'pay_via_mock', ok: paid.status === 200, result: paid.body, status: paid.status });

    try {
        const note = await Promise.race([first, timeout(15000, 'the notification')]);
        const signature = note.headers['x-api-signature-sha256'];
        const body = JSON.parse(note.body);
        const tampered = JSON.parse(note.body);
        tampered.bill.amount.value = '10000.00';
        steps.push({
            name: 'notification',
            ok: true,
            result: {
                body,
                signature,
                verified: qiwi.checkNotificationSignature(signature, body, SECRET_KEY),
                tamperedVerified: qiwi.checkNotificationSignature(signature, tampered, SECRET_KEY),
                wrongKeyVerified: qiwi.checkNotificationSignature(signature, body, `${SECRET_KEY}x`)
            }
        });
    } catch (err) {
        steps.push({ name: 'notification', ok: false, error: { name: err.name, message: err.message } });
    }

    await step('refund_partial', () => qiwi.refund(billId, `r1-${suffix}`, 1.5, 'RUB'));
    await step('refund_repeated', () => qiwi.refund(billId, `r1-${suffix}`, 1.5, 'RUB'));
    await step('get_refund', () => qiwi.getRefundInfo(billId, `r1-${suffix}`));
    await step('refund_rest', () => qiwi.refund(billId, `r2-${suffix}`, '8.50', 'RUB'));

    await step('error_401', () => new QiwiBillPaymentsAPI('not-the-key').getBillInfo(billId));
    await step('error_404', () => qiwi.getBillInfo(`node-sdk-missing-${suffix}`));
    await step('error_404_refund', () => qiwi.getRefundInfo(`node-sdk-missing-${suffix}`, 'r1'));
    await step('error_400', () => qiwi.createBill(`node-sdk-bad-${suffix}`, { ...params(), amount: 0 }));

    server.close();
    process.stdout.write(`${JSON.stringify({ sdkVersion, steps, wire })}\n`);
}

main().catch((err) => {
    process.stderr.write(`${err && err.stack}\n`);
    process.exit(1);
});
