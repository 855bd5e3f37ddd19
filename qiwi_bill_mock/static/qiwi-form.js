/*
 * qiwi-bill-mock: loaded only by pages shown inside the Checkout Popup's iframe (embedded=true).
 *
 * It tells the popup (static/popup-v1.js, in the merchant's page) how the payment ended; the real popup closes
 * itself 2 seconds after a payment or an error (bill-payments-popup-js-sdk README). It also forwards the Escape
 * key, so the popup closes even while the focus is inside the iframe. The messages go only to the origin the
 * mock let frame this page (data-parent-origin, the page's frame-ancestors); a page without one is not framed.
 */
(function () {
  "use strict";
  var parentOrigin = document.body && document.body.getAttribute("data-parent-origin");
  if (window.parent === window || !parentOrigin) {
    return;
  }
  function post(event) {
    window.parent.postMessage({ source: "qiwi-bill-mock", event: event }, parentOrigin);
  }
  var outcome = document.body && document.body.getAttribute("data-popup-event");
  if (outcome) {
    post(outcome);
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      post("escape");
    }
  });
})();
