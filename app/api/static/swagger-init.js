// Starts Swagger UI on /docs: a file of its own, as the Content-Security-Policy allows no
// inline script. The OpenAPI document's address is the container's data-url.
window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.getAttribute("data-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
