// Starts Swagger UI on /schema. Kept in a file, not inline: the pages' Content-Security-Policy
// allows scripts from the gateway's own origin only.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // The gateway answers for itself: no validator badge that would call another host.
    validatorUrl: null,
  });
});
