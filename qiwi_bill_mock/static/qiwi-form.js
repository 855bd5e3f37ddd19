/*
 * qiwi-bill-mock: loaded only by pages shown inside the Checkout Popup's iframe (embedded=true).
 * It tells the popup (static/popup-v1.js, in the merchant's page) how the payment ended; the real popup closes
 * itself 2 seconds after a payment or an error (bill-payments-popup-js-sdk README). The message carries only the
 * outcome, nothing secret, so it is posted to any origin: the mock cannot know the merchant's.
 */
(function () {
  "use strict";
  var outcome = document.body && document.body.getAttribute("data-popup-event");
  if (!outcome || window.parent === window) {
    return;
  }
  window.parent.postMessage({ source: "qiwi-bill-mock", event: outcome }, "*");
})();
