// The API reference page at /api/v1/docs: Swagger UI over the document the server generates
// from its own code. "Try it out" sends same-origin requests, so it acts as the logged-in
// console user (cookie) — nothing is sent anywhere else.
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  filter: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
