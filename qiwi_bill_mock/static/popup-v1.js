/*
 * QIWI Checkout Popup, as served by qiwi-bill-mock at /popup/v1.js.
 *
 * The same API as https://oplata.qiwi.com/popup/v1.js (API doc, "Checkout Popup";
 * QIWI-API/bill-payments-popup-js-sdk README):
 *
 *   QiwiCheckout.createInvoice({publicKey, amount, billId?, phone?, email?, account?, comment?,
 *                               customFields?, lifetime?})
 *   QiwiCheckout.openInvoice({payUrl})
 *
 * Each opens the mock's payment form in an overlay iframe and returns a Promise that resolves with the params it
 * was given once the bill is paid, and rejects with {reason: "PAYMENT_FAILED"} if the bill is rejected, expired or
 * cannot be opened, or with {reason: "POPUP_CLOSED"} if the customer closes the popup first. As in the real popup,
 * the overlay closes itself 2 seconds after a payment or an error. Missing or unusable params reject with an
 * Error (the real SDK throws Error("params") / Error("payUrl")).
 *
 * The page in the iframe reports the outcome with postMessage; only messages from that iframe are trusted.
 * Nothing here is loaded from anywhere but the mock that served this file, and openInvoice opens only http(s)
 * payUrls on that mock's origin: a "javascript:" payUrl would otherwise run in the merchant's page as the
 * iframe's src (issue 16, item 9). The iframe URL carries frameOrigin, the origin of the page this runs in: the
 * mock lets only that origin frame the form (frame-ancestors; issue 16, item 8).
 */
(function (global) {
  "use strict";

  var script = document.currentScript;
  // The mock's base URL: where this very file came from, minus "/popup/v1.js" (keeps a path prefix if any).
  var BASE = script && script.src ? script.src.replace(/\/popup\/v1\.js(?:[?#].*)?$/, "") : "";
  // Where the payment form may come from: the origin this file was served from (null if it was not served).
  var WEB_SCHEME = /^https?:$/;
  var BASE_ORIGIN = BASE && WEB_SCHEME.test(new URL(BASE).protocol) ? new URL(BASE).origin : null;
  var CLOSE_DELAY_MS = 2000;
  var MOSCOW_OFFSET_MS = 3 * 60 * 60 * 1000;
  var current = null;

  function pad(number) {
    return (number < 10 ? "0" : "") + number;
  }

  // The form's lifetime is YYYY-MM-DDTHHmm in Moscow time (UTC+3, no DST since 2014). A Date is converted; a
  // string is passed through unchanged, so the mock can tell the merchant when it is malformed.
  function formatLifetime(value) {
    if (!(value instanceof Date)) {
      return String(value);
    }
    var moscow = new Date(value.getTime() + MOSCOW_OFFSET_MS);
    return (
      moscow.getUTCFullYear() + "-" + pad(moscow.getUTCMonth() + 1) + "-" + pad(moscow.getUTCDate()) +
      "T" + pad(moscow.getUTCHours()) + pad(moscow.getUTCMinutes())
    );
  }

  // The mock's own parameter: the origin allowed to frame the form. A page without one (file://) sends none.
  function addFrameOrigin(query) {
    if (WEB_SCHEME.test(global.location.protocol)) {
      query.set("frameOrigin", global.location.origin);
    }
  }

  function createQuery(params) {
    var query = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value === undefined || value === null || value === "") {
        return;
      }
      if (key === "customFields" && typeof value === "object") {
        Object.keys(value).forEach(function (name) {
          query.append("customFields[" + name + "]", String(value[name]));
        });
      } else if (key === "lifetime") {
        query.append(key, formatLifetime(value));
      } else if (key !== "successUrl") {
        // successUrl is dropped: inside the popup the customer stays on the merchant's page.
        query.append(key, String(value));
      }
    });
    // What the real popup adds to its iframe URL (bill-payments-popup-js-sdk, CheckoutIframe.js).
    query.append("embedded", "true");
    query.append("billref", "popup");
    addFrameOrigin(query);
    return query.toString();
  }

  function close(reason) {
    var popup = current;
    if (!popup) {
      return;
    }
    current = null;
    global.removeEventListener("message", popup.onMessage);
    document.removeEventListener("keydown", popup.onKey);
    if (popup.overlay.parentNode) {
      popup.overlay.parentNode.removeChild(popup.overlay);
    }
    if (reason) {
      popup.settle(false, { reason: reason });
    }
  }

  // One element of the popup, from its DOM properties, its attributes and its inline style.
  function element(tag, spec) {
    var node = document.createElement(tag);
    var properties = spec.properties || {};
    var attributes = spec.attributes || {};
    Object.keys(properties).forEach(function (name) {
      node[name] = properties[name];
    });
    Object.keys(attributes).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    node.style.cssText = spec.style;
    return node;
  }

  function show(src, params) {
    close("POPUP_CLOSED");
    return new Promise(function (resolve, reject) {
      var settled = false;
      var frameOrigin = new URL(src, global.location.href).origin;

      var overlay = element("div", {
        properties: { id: "qiwi-checkout-popup" },
        attributes: { role: "dialog", "aria-modal": "true", "aria-label": "QIWI payment" },
        style:
          "position:fixed;inset:0;z-index:100000;display:flex;align-items:center;justify-content:center;" +
          "background:rgba(15,23,42,.55)",
      });
      var box = element("div", {
        style:
          "position:relative;width:480px;max-width:100%;height:680px;max-height:100%;background:#fff;" +
          "border-radius:12px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.3)",
      });
      var button = element("button", {
        properties: { type: "button", id: "qiwi-checkout-close", textContent: "\u2715" },
        attributes: { "aria-label": "Close" },
        style:
          "position:absolute;top:8px;right:8px;z-index:2;border:0;background:transparent;font-size:18px;" +
          "color:#6b7280;cursor:pointer;padding:6px 10px",
      });
      var frame = element("iframe", {
        properties: { id: "qiwi-checkout-frame", title: "QIWI payment form", src: src },
        style: "border:0;width:100%;height:100%;display:block",
      });

      var popup = {
        overlay: overlay,
        settle: function (ok, value) {
          if (settled) {
            return;
          }
          settled = true;
          if (ok) {
            resolve(value);
          } else {
            reject(value);
          }
        },
        onMessage: function (event) {
          // Trust only the mock's page in our own iframe.
          if (event.source !== frame.contentWindow || event.origin !== frameOrigin) {
            return;
          }
          var data = event.data || {};
          if (data.source !== "qiwi-bill-mock") {
            return;
          }
          if (data.event === "escape") {
            close("POPUP_CLOSED");
            return;
          }
          if (data.event === "paid") {
            popup.settle(true, params);
          } else if (data.event === "failed") {
            popup.settle(false, { reason: "PAYMENT_FAILED" });
          } else {
            return;
          }
          global.setTimeout(function () {
            if (current === popup) {
              close(null);
            }
          }, CLOSE_DELAY_MS);
        },
        onKey: function (event) {
          if (event.key === "Escape") {
            close("POPUP_CLOSED");
          }
        },
      };

      button.addEventListener("click", function () {
        close("POPUP_CLOSED");
      });
      overlay.addEventListener("click", function (event) {
        if (event.target === overlay) {
          close("POPUP_CLOSED");
        }
      });
      global.addEventListener("message", popup.onMessage);
      document.addEventListener("keydown", popup.onKey);

      box.appendChild(button);
      box.appendChild(frame);
      overlay.appendChild(box);
      document.body.appendChild(overlay);
      current = popup;
    });
  }

  function createInvoice(params) {
    params = params || {};
    if (!params.publicKey || params.amount === undefined || params.amount === null || params.amount === "") {
      return Promise.reject(new Error("params: QiwiCheckout.createInvoice needs publicKey and amount"));
    }
    return show(BASE + "/create?" + createQuery(params), params);
  }

  function openInvoice(params) {
    params = params || {};
    var url;
    try {
      url = new URL(params.payUrl, global.location.href);
    } catch (error) {
      return Promise.reject(new Error("payUrl: QiwiCheckout.openInvoice needs the bill's payUrl"));
    }
    // The popup SDK accepts both spellings of the id (invoiceUid in the doc, invoice_uid in real payUrls).
    if (!url.searchParams.get("invoiceUid") && !url.searchParams.get("invoice_uid")) {
      return Promise.reject(new Error("payUrl: no invoiceUid in " + url.href));
    }
    // Only the mock's own form: "javascript:alert(1)//?invoice_uid=1" parses as a URL with an invoice_uid, and as
    // the iframe's src it would run in this page. An http(s) payUrl of another origin is refused too.
    if (!WEB_SCHEME.test(url.protocol) || BASE_ORIGIN === null || url.origin !== BASE_ORIGIN) {
      return Promise.reject(new Error("payUrl: QiwiCheckout.openInvoice opens only payUrls of " + BASE_ORIGIN));
    }
    url.searchParams.delete("successUrl");
    url.searchParams.set("embedded", "true");
    url.searchParams.set("billref", "popup");
    addFrameOrigin(url.searchParams);
    return show(url.href, params);
  }

  global.QiwiCheckout = {
    createInvoice: createInvoice,
    openInvoice: openInvoice,
    /** Close an open popup; its promise rejects with {reason: "POPUP_CLOSED"}. (Mock-only helper.) */
    close: function () {
      close("POPUP_CLOSED");
    },
  };
})(window);
